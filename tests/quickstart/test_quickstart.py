"""``shipyard quickstart`` end to end: run, rerun (all cached), new seed (promote if better)."""

from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd

import shipyard as sy
from shipyard.quickstart.pipeline import MODEL_NAME, TASKS
from tests.quickstart.conftest import quickstart


def test_first_run_trains_registers_promotes_and_prints_lineage(home: Path) -> None:
    result, text = quickstart(home)

    assert result.state == "SUCCEEDED"
    assert result.executed == list(TASKS) and result.cached == []
    assert result.registered and result.promoted
    assert result.version == 1 and result.semver == "1.0.0"
    assert 0 < result.metrics["rmse"] < 0.15 and result.metrics["r2"] > 0.5
    assert result.production is not None and result.production.version == 1
    # The lineage runs from the generated dataset, through every training step, to the
    # registered version.
    assert result.lineage[0] == "step ingest-leads"
    assert "Dataset ingest-leads.dataset" in result.lineage[1]
    assert [line for line in result.lineage if line.startswith("step ")] == [
        "step ingest-leads", "step preprocess-leads", "step train-model", "step register-model"
    ]  # fmt: skip
    assert result.lineage[-1].endswith(str(result.production.artifact_id))
    for command in ("shipyard runs list", "shipyard models history lead-scoring",
                    f"shipyard lineage show {result.production.artifact_id}",
                    "shipyard server"):  # fmt: skip
        assert command in text
    assert "5 ran, 0 cached" in text and "promoted it to production as 1.0.0" in text
    # Serving: the production version on seed 002's endpoint, scoring the seed's lead first.
    served = result.served
    assert served is not None and served.endpoint == "lead-scoring-endpoint"
    assert served.deployed_model_id == f"{MODEL_NAME}:1" and served.action == "deployed"
    assert served.leads[0]["company_size"] == 152 and len(served.leads) == len(served.scores) == 4
    assert all(0.0 <= s <= 1.0 for s in served.scores)
    assert "Serving  lead-scoring-endpoint: lead-scoring:1 (deployed)" in text
    assert f"{served.scores[0]:.3f}" in text
    # Each score explained: one attribution per lead feature, adding up with the baseline to
    # the score (sampled Shapley is exact along each path), the top two named in the table.
    assert len(served.attributions) == 4
    for score, attributions in zip(served.scores, served.attributions, strict=True):
        assert set(attributions) == set(served.leads[0])
        assert abs(served.baseline_score + sum(attributions.values()) - score) < 1e-4
    assert "why (top 2)" in text
    strongest = max(served.attributions[0].items(), key=lambda item: abs(item[1]))
    assert strongest[0] in text.split("seed 002's example lead")[0].splitlines()[-5]
    assert ("curl -s -X POST http://127.0.0.1:8080/api/v1/projects/default/endpoints/"
            "lead-scoring-endpoint:predict") in text
    # Monitoring: the campaign's leads (half from Facebook, companies a quarter the size)
    # are caught on exactly those two features; the unchanged ones stay quiet; one alert.
    drift = result.drift
    assert drift is not None and drift.monitor == "lead-scoring-monitor"
    assert drift.sent == 500 and drift.judged_rows == 504  # the 4 scored leads as well
    assert sorted(name for name, *_ in drift.drifted) == ["campaign_source", "company_size"]
    assert all(value > threshold for _, _, value, threshold in drift.drifted)
    assert drift.alert is not None and drift.alert.startswith("warning skew alert ")
    assert "Drift    lead-scoring-monitor judged 504 logged leads" in text
    assert "shipyard monitors alerts lead-scoring-monitor" in text

    sy.init(home=home)
    # One servable version: raw lead records in, scores out (the seed's example lead).
    model = sy.load_model(f"models:/{MODEL_NAME}@production")
    lead = {"company_size": 152, "industry": "technology", "product_interest": "enterprise",
            "pages_visited": 15, "time_on_site": 320, "campaign_source": "google",
            "prior_contacts": 2}  # fmt: skip
    gaps = dict(lead, industry=None, company_size=None)
    scores = model.predict(pd.DataFrame([lead, gaps]))
    assert len(scores) == 2 and all(0.0 <= float(s) <= 1.0 for s in scores)
    # The endpoint answered with the same model: the same score for the same lead.
    assert abs(float(scores[0]) - served.scores[0]) < 1e-6
    endpoint = sy.get_endpoint("lead-scoring-endpoint")
    assert endpoint.traffic == {f"{MODEL_NAME}:1": 100}
    assert endpoint.deployments[0].alias == "production"
    assert endpoint.predict([lead]).model_version == 1
    mv = sy.get_model_version(MODEL_NAME, version=1)
    assert mv.flavor == "sklearn-composite" and set(mv.metrics) >= {"rmse", "mae", "r2"}
    runs = sy.search_runs(experiment="lead-scoring")
    assert len(runs) == 1 and runs["metrics.rmse"].iloc[0] == result.metrics["rmse"]
    assert mv.labels["evaluation_run"] == runs["run_id"].iloc[0]
    # The pipeline run says which code ran it (the quick start's own, here).
    (pipeline_run,) = sy.list_pipeline_runs()
    assert pipeline_run.source["source.python"] == platform.python_version()


def test_rerun_is_all_cached_and_a_new_seed_promotes_only_if_better(home: Path) -> None:
    first, _ = quickstart(home)
    again, text = quickstart(home)
    assert again.executed == [] and again.cached == list(TASKS)
    assert not again.registered and "nothing new registered" in text
    assert again.served is not None and again.served.action == "already serving"
    assert again.served.scores[0] == first.served.scores[0]  # type: ignore[union-attr]
    # The rerun's campaign drifts too, and the alert already open is shown, not raised again.
    assert again.drift is not None and first.drift is not None
    assert again.drift.alert == first.drift.alert
    sy.init(home=home)
    assert [v.version for v in sy.list_model_versions(MODEL_NAME)] == [1]

    other, _ = quickstart(home, seed=5)
    assert other.executed == list(TASKS) and other.registered and other.version == 2
    better = other.metrics["rmse"] < first.metrics["rmse"]
    assert other.promoted == better
    production = sy.get_model_version(MODEL_NAME, alias="production")
    assert production.version == (2 if better else 1)
    assert production.semver == ("1.0.1" if better else "1.0.0")
    history = sy.alias_history(MODEL_NAME, "production")
    assert any(str(c.reason).startswith("rmse") for c in history)
    assert len(sy.list_model_versions(MODEL_NAME)) == 2
    # The endpoint follows production: rolled over to a newly promoted version, else as it was.
    assert other.served is not None
    assert other.served.deployed_model_id == f"{MODEL_NAME}:{production.version}"
    assert other.served.action == (f"rolled over from {MODEL_NAME}:1" if better
                                   else "already serving")
    assert sy.get_endpoint("lead-scoring-endpoint").traffic == {
        f"{MODEL_NAME}:{production.version}": 100}
