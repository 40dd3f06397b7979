"""Batch prediction in both modes: the model runs in the caller's process (through a
server, the registry sends it), with the same output; local mode records lineage."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.sdk import session
from tests.serving.conftest import frame, linear


def test_batch_predict_in_both_modes(sy: ModuleType, tmp_path: Path) -> None:
    sy.register_model("lead", linear(2.0), input_example=frame(5), aliases=["production"])
    data = frame(2_500, seed=3)
    data.to_parquet(tmp_path / "leads.parquet")
    job = sy.batch_predict("lead@production", tmp_path / "leads.parquet",
                           tmp_path / "scored.csv", chunk_rows=1_000)
    assert (job.rows, job.chunks, job.model, job.model_version) == (2_500, 3, "lead", 1)
    out = pd.read_csv(tmp_path / "scored.csv")
    assert np.allclose(out["prediction"], 2.0 * data["visits"])
    assert set(out["model_version"]) == {1}
    if session.current().remote:
        assert job.execution_id is None  # no REST route records batch jobs yet
    else:
        assert sy.get_execution(job.execution_id).properties["rows"] == 2_500
    with pytest.raises(NotFound) as unknown:
        sy.batch_predict("nope", tmp_path / "leads.parquet", tmp_path / "x.csv")
    assert unknown.value.field == "name" and "nope" in unknown.value.message
    with pytest.raises(InvalidArgument) as fmt:
        sy.batch_predict("lead", tmp_path / "leads.parquet", tmp_path / "x.xlsx")
    assert fmt.value.field == "destination"
