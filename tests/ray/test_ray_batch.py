"""batch_predict(executor="ray"): chunks predicted as Ray tasks on a real head (``ray start
--head`` on 127.0.0.1, as in test_ray_restart), with the same output, resume and lineage as
on one machine, and errors naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import shipyard as sy
from shipyard.errors import InvalidArgument
from shipyard.sdk import session
from shipyard.serving import batch
from tests.ray.heads import Head

SLOPE = 0.25


@pytest.fixture
def local(ray_head: Head, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Path]:
    sy.init(home=home, uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
            artifacts=str(tmp_path / "blobs"), project="batch")
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"visits": rng.integers(0, 50, 50).astype("int64"),
                         "time_on_site": rng.normal(120.0, 30.0, 50)})
    sy.register_model("lead", LinearRegression().fit(data, SLOPE * data["visits"]),
                      input_example=data.head(5))
    yield tmp_path
    session.reset()


def leads(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"lead_id": np.arange(rows, dtype=np.int64),
                         "visits": rng.integers(0, 50, rows).astype("int64"),
                         "time_on_site": rng.normal(120.0, 30.0, rows)})


class Interrupted(Exception):
    pass


def test_chunks_run_on_ray_with_the_same_output_resume_lineage_and_errors(
        local: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = leads(1_000)
    source = local / "leads.csv"
    frame.to_csv(source, index=False)

    # A first run on this machine stops after 2 of its 4 chunks (an interruption).
    def stop(progress: batch.Progress) -> None:
        if progress.chunks == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        sy.batch_predict("lead:1", source, local / "ray.parquet", chunk_rows=300,
                         on_progress=stop)

    # The rest runs on Ray: this process predicts nothing itself.
    here = batch._predict

    def not_here(*args: object) -> None:
        raise AssertionError("a chunk was predicted in the calling process")

    monkeypatch.setattr(batch, "_predict", not_here)
    seen: list[batch.Progress] = []
    job = sy.batch_predict("lead:1", source, local / "ray.parquet", chunk_rows=300,
                           executor="ray", on_progress=seen.append)
    monkeypatch.setattr(batch, "_predict", here)
    assert (job.rows, job.chunks, job.skipped_chunks) == (1_000, 4, 2)
    assert seen[-1].rows == 1_000
    out = pd.read_parquet(local / "ray.parquet")
    assert out["lead_id"].tolist() == list(range(1_000))  # each row once, in order
    assert np.allclose(out["prediction"], SLOPE * frame["visits"])
    assert set(out["model_name"].astype(str)) == {"lead"}
    assert set(out["model_version"]) == {1}
    assert not (local / ".ray.parquet.parts").exists()
    # The same file as a run on this machine, and recorded in lineage.
    mine = sy.batch_predict("lead:1", source, local / "here.parquet", chunk_rows=300)
    pd.testing.assert_frame_equal(out, pd.read_parquet(local / "here.parquet"))
    assert job.execution_id is not None
    assert job.destination_digest == mine.destination_digest

    # A value the signature refuses, found on a Ray worker, names the field as here.
    typo = local / "typo.csv"
    typo.write_text("lead_id,visits,time_on_site\n1,3,2.0\n2,many,4.0\n")
    with pytest.raises(InvalidArgument) as value:
        sy.batch_predict("lead:1", typo, local / "out.parquet", executor="ray")
    assert value.value.field == "source" and "many" in value.value.message
    with pytest.raises(InvalidArgument) as executor:
        sy.batch_predict("lead:1", source, local / "out.parquet", executor="spark")
    assert executor.value.field == "executor" and "'spark'" in executor.value.message
