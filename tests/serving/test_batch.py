"""Batch prediction: every format, one prediction per input row in order, bounded memory,
resuming after SIGKILL without redoing finished chunks, lineage, and bad input named."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

import shipyard as sy
from shipyard.errors import InvalidArgument, NotFound
from shipyard.sdk import session

SLOPE = 0.25


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"lead_id": np.arange(rows, dtype=np.int64),
                         "visits": rng.integers(0, 50, rows).astype("int64"),
                         "time_on_site": rng.normal(120.0, 30.0, rows)})


def register() -> None:
    """'lead' version 1 predicts SLOPE * visits; version 2, twice that."""
    data = table(50)[["visits", "time_on_site"]]
    for slope in (SLOPE, 2 * SLOPE):
        sy.register_model("lead", LinearRegression().fit(data, slope * data["visits"]),
                          input_example=data.head(5), aliases=["production"])


@pytest.fixture
def local(home: Path, tmp_path: Path) -> Iterator[Path]:
    """Local mode on SQLite with 'lead' registered; yields the working folder."""
    sy.init(home=home, uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
            artifacts=str(tmp_path / "blobs"), project="batch")
    register()
    yield tmp_path
    session.reset()


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, row_group_size=333)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("source_suffix", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("output_suffix", [".parquet", ".csv"])
def test_formats(local: Path, source_suffix: str, output_suffix: str) -> None:
    frame = table(1_000)
    source = write(frame, local / f"leads{source_suffix}")
    destination = local / f"scored{output_suffix}"
    job = sy.batch_predict("lead", source, destination, version=1, chunk_rows=300)
    assert (job.rows, job.chunks, job.skipped_chunks) == (1_000, 4, 0)
    assert (job.model, job.model_version) == ("lead", 1)
    out = read(destination)
    assert list(out.columns) == ["lead_id", "visits", "time_on_site", "prediction",
                                 "model_name", "model_version"]
    assert out["lead_id"].tolist() == list(range(1_000))  # one row per input, in order
    assert np.allclose(out["prediction"], SLOPE * frame["visits"])
    assert set(out["model_name"]) == {"lead"} and set(out["model_version"]) == {1}
    assert not (local / f".scored{output_suffix}.parts").exists()


def test_lineage_records_source_model_and_predictions(local: Path) -> None:
    source = write(table(500), local / "leads.parquet")
    destination = local / "scored.parquet"
    job = sy.batch_predict("models:/lead@production", source, destination, chunk_rows=200)
    assert job.model_version == 2 and job.execution_id is not None
    execution = sy.get_execution(job.execution_id)
    assert execution.type == "batch_prediction" and execution.state == "COMPLETE"
    assert execution.properties["rows"] == 500
    (predictions,) = sy.list_artifacts(type="Predictions")
    assert predictions.digest == sha256(destination)
    graph = sy.get_lineage(predictions.id)
    inputs = {e.name: e.artifact_id for e in graph.events
              if e.kind == "input" and e.execution_id == job.execution_id}
    by_id = {a.id: a for a in graph.artifacts}
    assert by_id[inputs["source"]].type == "Dataset"
    assert by_id[inputs["source"]].digest == sha256(source)
    model = sy.get_model_version("lead", version=2)
    assert inputs["model"] == model.artifact_id
    # version= and alias= pick among versions; the model reference may name one itself.
    assert sy.batch_predict("lead", source, destination, alias="production").model_version == 2
    assert sy.batch_predict("lead:1", source, destination).model_version == 1


BOUNDED = """
import json, resource, sys
import pyarrow as pa
import shipyard as sy
sy.init(home=sys.argv[1], uri=sys.argv[2], artifacts=sys.argv[3], project="batch")
sy.load_model("lead:1")  # imports and the model's files, before measuring
peaks = []
for source in sys.argv[4:]:
    job = sy.batch_predict("lead:1", source, source + ".parquet", chunk_rows=20_000)
    peaks.append([job.rows, pa.default_memory_pool().max_memory(),
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024])
print(json.dumps(peaks))
"""


def csv_file(path: Path, rows: int) -> Path:
    from pyarrow import csv

    with csv.CSVWriter(str(path), pa.schema([("lead_id", pa.int64()), ("visits", pa.int64()),
                                             ("time_on_site", pa.float64())])) as writer:
        for start in range(0, rows, 100_000):
            writer.write_table(pa.Table.from_pandas(table(100_000, seed=start).assign(
                lead_id=np.arange(start, start + 100_000)), preserve_index=False))
    return path


def test_memory_is_bounded_by_the_chunk_not_the_file(local: Path, home: Path) -> None:
    small = csv_file(local / "small.csv", 400_000)
    large = csv_file(local / "large.csv", 1_200_000)  # 29 MB as one DataFrame
    script = local / "bounded.py"
    script.write_text(BOUNDED)
    done = subprocess.run(
        [sys.executable, str(script), str(home), f"sqlite:///{local / 'db.sqlite'}",
         str(local / "blobs"), str(small), str(large)],
        capture_output=True, text=True, timeout=300, check=True)
    (rows_small, arrow_small, rss_small), (rows_large, arrow_large, rss_large) = json.loads(
        done.stdout)
    assert (rows_small, rows_large) == (400_000, 1_200_000)
    assert pq.ParquetFile(f"{large}.parquet").metadata.num_rows == 1_200_000
    # The process's peaks after the small file, then after three times as many rows in the
    # same chunks: they do not grow with the file (holding the large output, input columns
    # included, would take 48 MB more).
    assert arrow_large <= arrow_small * 1.15 + (2 << 20), (arrow_small, arrow_large)
    assert rss_large <= rss_small + (16 << 20), (rss_small, rss_large)
    # What it is: the CSV reader's read-ahead and a 20,000-row chunk.
    assert arrow_large < 24 << 20, arrow_large


SLOW_JOB = """
import sys, time
import shipyard as sy
sy.init(home=sys.argv[1], uri=sys.argv[2], artifacts=sys.argv[3], project="batch")
sy.batch_predict("lead:1", sys.argv[4], sys.argv[5], chunk_rows=1_000,
                 on_progress=lambda progress: time.sleep(0.1))
"""


def test_sigkill_then_resume_predicts_each_row_once(local: Path, home: Path) -> None:
    rows = 60_000
    frame = table(rows)
    source = write(frame, local / "leads.csv")
    destination = local / "scored.parquet"
    script = local / "slow.py"
    script.write_text(SLOW_JOB)
    manifest = local / ".scored.parquet.parts" / "manifest.json"
    job = subprocess.Popen(
        [sys.executable, str(script), str(home), f"sqlite:///{local / 'db.sqlite'}",
         str(local / "blobs"), str(source), str(destination)])
    try:
        deadline = time.monotonic() + 120
        done: dict[str, int] = {}
        while time.monotonic() < deadline and len(done) < 10:
            assert job.poll() is None, "the job ended before it was killed"
            if manifest.exists():
                try:
                    done = json.loads(manifest.read_text())["done"]
                except ValueError:  # never half-written: replaced atomically
                    pytest.fail("the manifest was read half-written")
            time.sleep(0.01)
        assert len(done) >= 10
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
    assert not destination.exists()
    finished = json.loads(manifest.read_text())["done"]
    assert 10 <= len(finished) < 60

    resumed = sy.batch_predict("lead:1", source, destination, chunk_rows=1_000)
    assert resumed.rows == rows and resumed.chunks == 60
    assert resumed.skipped_chunks >= len(finished)
    out = pd.read_parquet(destination)
    assert len(out) == rows
    assert out["lead_id"].tolist() == list(range(rows))  # each row exactly once, in order
    assert np.allclose(out["prediction"], SLOPE * frame["visits"])


def test_another_job_does_not_reuse_parts(local: Path) -> None:
    source = write(table(100), local / "leads.csv")
    destination = local / "scored.parquet"
    parts = local / ".scored.parquet.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"job": "other", "done": {"0": 100}}))
    job = sy.batch_predict("lead:2", source, destination, chunk_rows=100)
    assert job.skipped_chunks == 0
    assert np.allclose(read(destination)["prediction"], 2 * SLOPE * table(100)["visits"])


def test_bad_input_names_the_field(local: Path) -> None:
    frame = table(20)
    good = write(frame, local / "leads.csv")
    out = local / "out.parquet"
    with pytest.raises(NotFound) as missing:
        sy.batch_predict("lead", local / "nope.csv", out)
    assert missing.value.field == "source"
    wrong = write(frame.drop(columns=["time_on_site"]), local / "wrong.csv")
    with pytest.raises(InvalidArgument) as column:
        sy.batch_predict("lead", wrong, out)
    assert column.value.field == "time_on_site" and "'time_on_site'" in column.value.message
    text = local / "leads.txt"
    text.write_text(good.read_text())
    with pytest.raises(InvalidArgument) as unknown:
        sy.batch_predict("lead", text, out)
    assert unknown.value.field == "source" and "'leads.txt'" in unknown.value.message
    assert "input_format" in unknown.value.message
    assert sy.batch_predict("lead", text, out, input_format="csv").rows == 20
    with pytest.raises(InvalidArgument) as output_format:
        sy.batch_predict("lead", good, out, output_format="xml")
    assert output_format.value.field == "output_format"
    with pytest.raises(InvalidArgument) as suffix:
        sy.batch_predict("lead", good, local / "out.xlsx")
    assert suffix.value.field == "destination"
    for chunk in (0, -5, 10_000_001):
        with pytest.raises(InvalidArgument) as size:
            sy.batch_predict("lead", good, out, chunk_rows=chunk)
        assert size.value.field == "chunk_rows"
    with pytest.raises(InvalidArgument) as both:
        sy.batch_predict("lead", good, out, version=1, alias="production")
    assert both.value.field == "version"
    typo = local / "typo.csv"
    typo.write_text("lead_id,visits,time_on_site\n1,3,2.0\n2,many,4.0\n")
    with pytest.raises(InvalidArgument) as value:
        sy.batch_predict("lead", typo, out)
    assert value.value.field == "source" and "many" in value.value.message
    with pytest.raises(InvalidArgument) as clash:
        sy.batch_predict("lead", write(frame.assign(prediction=1.0), local / "p.csv"), out)
    assert clash.value.field == "prediction"


def test_cli(local: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.cli.main import app

    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(local / "blobs"))
    source = write(table(300), local / "leads.jsonl")
    destination = local / "scored.csv"
    db = f"sqlite:///{local / 'db.sqlite'}"
    runner = CliRunner()
    result = runner.invoke(app, ["--uri", db, "--project", "batch", "batch-predict", "lead:1",
                                 str(source), str(destination), "--chunk-rows", "100",
                                 "--output", "json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["rows"], answer["chunks"], answer["model_version"]) == (300, 3, 1)
    assert len(pd.read_csv(destination)) == 300
    bad = runner.invoke(app, ["--uri", db, "--project", "batch", "batch-predict", "lead",
                              str(source), str(destination), "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.stderr
    gone = runner.invoke(app, ["--uri", db, "--project", "batch", "batch-predict", "lead",
                               str(local / "none.csv"), str(destination)])
    assert gone.exit_code == 1 and "no source file" in gone.stderr


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_column_types_come_from_the_signature_not_the_first_block(local: Path,
                                                                   suffix: str) -> None:
    # 30,000 rows of whole seconds (past the first read block), then fractions: a reader
    # inferring types from its first block would take time_on_site for integers and fail.
    frame = pd.DataFrame({"visits": np.full(60_000, 4, dtype=np.int64),
                          "time_on_site": np.r_[np.full(30_000, 100), np.full(30_000, 100.5)]
                          .astype(object)})
    frame.loc[:29_999, "time_on_site"] = 100  # written as "100", not "100.0"
    source = local / f"mixed{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_json(source, orient="records", lines=True)
    assert "100.0" not in source.read_text()[:1000]
    job = sy.batch_predict("lead:1", source, local / "mixed.parquet", chunk_rows=7_000)
    out = pd.read_parquet(local / "mixed.parquet")
    assert job.rows == 60_000 and out["time_on_site"].dtype == np.float64
    assert out["time_on_site"].iloc[-1] == 100.5
    assert np.allclose(out["prediction"], SLOPE * 4)
