"""``shipyard quickstart`` end to end: run (train, serve, drift, and the closed loop: retrain
on the alert, canary, promote or roll back), rerun (all cached, the loop not run twice), new
seed (promote if better). One home for all three: each full run costs tens of seconds."""

from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd

import shipyard as sy
from shipyard.quickstart.pipeline import MODEL_NAME, PIPELINE_NAME, TASKS
from shipyard.quickstart.run import QuickstartResult
from tests.quickstart.conftest import quickstart

ENDPOINT = "lead-scoring-endpoint"
CANARY_REQUESTS = 12


def test_quickstart_closes_the_loop_and_reruns_safely(home: Path) -> None:
    result, text = quickstart(home, canary_requests=CANARY_REQUESTS)
    check_first_run(home, result, text)
    check_closed_loop(home, result, text)
    check_rerun_and_new_seed(home, result)


def check_first_run(home: Path, result: QuickstartResult, text: str) -> None:

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
    # (Version 1: production since the loop may have moved on to version 2.)
    model = sy.load_model(f"models:/{MODEL_NAME}/1")
    lead = {"company_size": 152, "industry": "technology", "product_interest": "enterprise",
            "pages_visited": 15, "time_on_site": 320, "campaign_source": "google",
            "prior_contacts": 2}  # fmt: skip
    gaps = dict(lead, industry=None, company_size=None)
    scores = model.predict(pd.DataFrame([lead, gaps]))
    assert len(scores) == 2 and all(0.0 <= float(s) <= 1.0 for s in scores)
    # The endpoint answered with the same model: the same score for the same lead.
    assert abs(float(scores[0]) - served.scores[0]) < 1e-6
    mv = sy.get_model_version(MODEL_NAME, version=1)
    assert mv.flavor == "sklearn-composite" and set(mv.metrics) >= {"rmse", "mae", "r2"}
    runs = sy.search_runs(experiment="lead-scoring")  # the training run and the loop's
    assert result.metrics["rmse"] in set(runs["metrics.rmse"])
    assert mv.labels["evaluation_run"] in set(runs["run_id"])
    # The pipeline run says which code ran it (the quick start's own, here).
    pipeline_run = sy.get_pipeline_run(result.run_id)
    assert pipeline_run.source["source.python"] == platform.python_version()


def check_closed_loop(home: Path, result: QuickstartResult, text: str) -> None:
    """The alert retrained on fresh leads, the winner went out as a 10% canary of
    CANARY_REQUESTS requests and was promoted to 100% or rolled back: every step in the
    trigger firings, the audit log and the lineage."""
    loop, drift = result.loop, result.drift
    assert loop is not None and drift is not None and not loop.already
    assert loop.alert_id is not None and drift.alert is not None
    assert drift.alert.endswith(loop.alert_id)
    # The retrain trigger ran the lead-scoring pipeline on fresh leads, the champion (the
    # version the alert was about) named as the one to beat, the alert among its arguments.
    assert loop.retrain_trigger == f"{ENDPOINT}-retrain"
    (fired,) = sy.trigger_firings(loop.retrain_trigger)
    assert fired.state == "done" and fired.result is not None
    assert fired.result["pipeline_run_id"] == loop.pipeline_run_id
    run = sy.get_pipeline_run(str(loop.pipeline_run_id))
    assert run.pipeline_name == PIPELINE_NAME and run.state == "SUCCEEDED"
    assert run.arguments["alert"] == loop.alert_id and run.arguments["champion"] == 1
    assert run.arguments["campaign"] == 0.5 and run.arguments["rows"] == 1_000
    assert sorted(loop.executed) == sorted(TASKS)
    # The campaign's leads convert better than the champion learnt: the candidate trained
    # on them wins on the same held-out fresh leads, and only then is registered.
    assert loop.candidate_rmse is not None and loop.champion_rmse is not None
    assert loop.candidate_rmse < loop.champion_rmse
    assert loop.candidate == 2
    candidate = sy.get_model_version(MODEL_NAME, version=2)
    assert candidate.labels["challenged"] == "1"
    assert candidate.metrics["champion_rmse"] == loop.champion_rmse
    # Lineage: the new version was produced by the alert's pipeline run, from its fresh data.
    graph = sy.get_lineage(str(candidate.artifact_id))
    steps = {e.name.rsplit("/", 1)[-1]: e for e in graph.executions}
    assert set(steps) == set(TASKS)
    assert {e.properties["run_id"] for e in graph.executions} == {loop.pipeline_run_id}
    assert steps["ingest-leads"].properties["parameters"]["campaign"] == 0.5
    # The canary trigger deployed it at 10% against the champion, judged after
    # CANARY_REQUESTS of its requests.
    (canaried,) = sy.trigger_firings(loop.canary_trigger)
    assert canaried.state == "done" and canaried.result is not None
    rollout = loop.rollout
    assert rollout is not None and canaried.result["rollout"] == rollout.id
    assert rollout.candidate == f"{MODEL_NAME}:2" and rollout.champions == [f"{MODEL_NAME}:1"]
    assert rollout.percent == 10 and rollout.after_requests == CANARY_REQUESTS
    assert rollout.previous_traffic == {f"{MODEL_NAME}:1": 100, f"{MODEL_NAME}:2": 0}
    assert rollout.state in ("promoted", "rolled_back") and rollout.decision is not None
    assert rollout.decision["candidate"]["requests"] >= CANARY_REQUESTS
    assert loop.requests_sent >= CANARY_REQUESTS
    assert loop.alert_to_decision_s is not None and loop.alert_to_decision_s > 0
    endpoint = sy.get_endpoint(ENDPOINT)
    production = sy.get_model_version(MODEL_NAME, alias="production")
    if rollout.state == "promoted":
        assert endpoint.traffic == {f"{MODEL_NAME}:2": 100}
        assert production.version == loop.production == 2
        assert "promoted to 100% and to production" in text
    else:
        assert endpoint.traffic == {f"{MODEL_NAME}:1": 100}
        assert production.version == loop.production == 1
        assert "rolled back" in text
    # The audit trail, in order: the pipeline run the retrain trigger created (its action
    # is recorded before the firing's outcome), the registration, the canary started by the
    # canary trigger, then its verdict.
    actions = [(a.action, a.resource) for a in reversed(sy.list_audit_events(limit=1000))]
    verdict = ("endpoint.canary.promote" if rollout.state == "promoted"
               else "endpoint.canary.rollback")
    chain = [("pipelines.run.create", f"pipeline_runs/{loop.pipeline_run_id}"),
             ("events.trigger.fire", f"triggers/{loop.retrain_trigger}"),
             ("model.register", f"models/{MODEL_NAME}/versions/2"),
             ("endpoint.canary.start", f"endpoints/{ENDPOINT}"),
             ("events.trigger.fire", f"triggers/{loop.canary_trigger}"),
             (verdict, f"endpoints/{ENDPOINT}")]
    positions = [actions.index(step) for step in chain]
    assert positions == sorted(positions), positions
    fires = [a for a in sy.list_audit_events(action="events.trigger.fire", limit=1000)]
    assert {a.resource for a in fires} == {f"triggers/{loop.retrain_trigger}",
                                           f"triggers/{loop.canary_trigger}"}
    assert all(a.outcome == "ok" for a in fires)
    assert f"Loop     alert {loop.alert_id}" in text
    assert f"pipeline run {loop.pipeline_run_id}" in text


def check_rerun_and_new_seed(home: Path, first: QuickstartResult) -> None:
    assert first.loop is not None and first.loop.rollout is not None
    again, text = quickstart(home)
    assert again.executed == [] and again.cached == list(TASKS)
    assert not again.registered and "nothing new registered" in text
    assert again.served is not None and again.served.action == "already serving"
    # The endpoint serves what the loop left: the promoted version, or the champion.
    assert again.served.deployed_model_id == f"{MODEL_NAME}:{first.loop.production}"
    if first.loop.production == 1:
        assert again.served.scores[0] == first.served.scores[0]  # type: ignore[union-attr]
    # The rerun's campaign drifts too, and the alert already open is shown, not raised again.
    assert again.drift is not None and first.drift is not None
    assert again.drift.alert == first.drift.alert
    # The loop is not run twice for one alert: the rerun shows what it did.
    assert again.loop is not None and again.loop.already
    assert again.loop.pipeline_run_id == first.loop.pipeline_run_id
    assert again.loop.rollout is not None
    assert again.loop.rollout.id == first.loop.rollout.id
    assert again.loop.rollout.state == first.loop.rollout.state
    assert "in an earlier quickstart" in text
    sy.init(home=home)
    assert [v.version for v in sy.list_model_versions(MODEL_NAME)] == [2, 1]
    assert len(sy.trigger_firings(f"{ENDPOINT}-retrain")) == 1
    assert len(sy.trigger_firings(f"{ENDPOINT}-canary")) == 1

    before = sy.get_model_version(MODEL_NAME, alias="production")
    other, _ = quickstart(home, seed=5)
    assert other.executed == list(TASKS) and other.registered and other.version == 3
    better = other.metrics["rmse"] < before.metrics["rmse"]
    assert other.promoted == better
    production = sy.get_model_version(MODEL_NAME, alias="production")
    assert production.version == (3 if better else before.version)
    history = sy.alias_history(MODEL_NAME, "production")
    assert any(str(c.reason).startswith("rmse") for c in history)
    assert len(sy.list_model_versions(MODEL_NAME)) == 3
    # The endpoint follows production: rolled over to a newly promoted version, else as it was.
    assert other.served is not None
    assert other.served.deployed_model_id == f"{MODEL_NAME}:{production.version}"
    assert other.served.action == (f"rolled over from {MODEL_NAME}:{before.version}"
                                   if better else "already serving")
    assert sy.get_endpoint(ENDPOINT).traffic == {f"{MODEL_NAME}:{production.version}": 100}
    # The training run's registration is not the loop's: no canary for it (the loop's
    # triggers start from the drift step), and the alert still open closes no loop again.
    assert len(sy.trigger_firings(f"{ENDPOINT}-canary")) == 1
    assert other.loop is not None and other.loop.already
