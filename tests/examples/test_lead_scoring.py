"""The lead-scoring example (seed 002 on Shipyard) runs end to end, and reruns from cache."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import shipyard as sy
from shipyard.sdk import session

EXAMPLE = Path(__file__).parents[2] / "examples" / "lead_scoring" / "lead_scoring_pipeline.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lead_scoring_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # components read their source through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.chdir(tmp_path)  # the compiled YAML is written to the working directory
    session.reset()
    yield load_example()
    session.reset()


def test_example_runs_registers_and_serves(example: ModuleType, home: Path) -> None:
    table = Path(example.write_local_table(rows=3_000))
    assert table.is_relative_to(home / "warehouse")

    job = example.compile_and_run_pipeline()
    assert job.state == "SUCCEEDED"
    assert Path("lead_scoring_pipeline.yaml").exists()
    assert [t for t in job.tasks] and all(not t.cached for t in job.tasks.values())
    outcome = job.tasks["register-model"].outputs["Output"]
    assert outcome == {"deployment_decision": "deployed_first_version", "version": "1.0.0",
                       "model_id": "models:/lead-scoring/1"}  # fmt: skip
    matrix = job.tasks["evaluate-model"].outputs["metrics"].metadata["confusionMatrix"]
    assert len(matrix["rows"]) == 5

    # The seed's "new lead", scored by the one servable version (preprocessor + booster),
    # also with the gaps the imputers are there for.
    new_lead = {"company_size": 152, "industry": "technology", "product_interest": "enterprise",
                "pages_visited": 15, "time_on_site": 320, "campaign_source": "google",
                "prior_contacts": 2}  # fmt: skip
    model = sy.load_model("models:/lead-scoring@production")
    scores = model.predict(pd.DataFrame([new_lead, dict(new_lead, industry=None)]))
    assert len(scores) == 2
    runs = sy.search_runs(experiment="lead-scoring_experiment")
    assert len(runs) == 1 and float(runs["metrics.rmse"].iloc[0]) > 0

    again = example.compile_and_run_pipeline()
    assert all(t.cached for t in again.tasks.values())
    assert [v.version for v in sy.list_model_versions("lead-scoring")] == [1]
