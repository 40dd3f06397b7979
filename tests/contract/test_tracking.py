"""Tracking through the public SDK; every test runs in local and in remote mode."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound


def test_run_logs_and_reads_back(sy: ModuleType) -> None:
    with sy.start_run(experiment="lead-scoring", name="first") as run:
        run.log_params({"max_depth": 6, "eta": 0.1})
        run.log_metrics({"rmse": 0.5})
        run.log_metrics({"rmse": 0.3}, step=1)
        run.set_tags({"team": "sales"})
    stored = sy.get_run(run.id)
    assert stored.status == "FINISHED" and stored.end_time is not None
    assert stored.experiment == "lead-scoring" and stored.name == "first"
    assert stored.params == {"max_depth": "6", "eta": "0.1"}
    assert stored.metrics == {"rmse": 0.3}
    assert stored.tags["team"] == "sales"
    history = sy.get_metric_history(run.id, "rmse")
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (1, 0.3)]


def test_failed_block_marks_run_failed(sy: ModuleType) -> None:
    with pytest.raises(ZeroDivisionError):
        with sy.start_run(experiment="e") as run:
            run.log_metric("x", 1.0)
            _ = 1 / 0
    assert sy.get_run(run.id).status == "FAILED"
    with pytest.raises(FailedPrecondition):
        run.log_metric("x", 2.0)


def test_search_runs_returns_dataframe(sy: ModuleType) -> None:
    for depth, rmse in [(3, 0.4), (6, 0.1), (6, 0.25)]:
        with sy.start_run(experiment="exp", params={"max_depth": depth}) as run:
            run.log_metric("rmse", rmse)
    frame = sy.search_runs(experiment="exp", filter="metrics.rmse < 0.3 and params.max_depth = '6'",
                           order_by=["metrics.rmse"])
    assert list(frame["metrics.rmse"]) == [0.1, 0.25]
    assert list(frame.columns[:6]) == ["run_id", "experiment", "name", "status", "start_time",
                                       "end_time"]
    assert "params.max_depth" in frame.columns
    assert sy.search_runs(experiment="nope").empty
    compared = sy.compare_runs(list(frame["run_id"]))
    assert list(compared.loc["metrics.rmse"]) == [0.1, 0.25]


def test_background_logging_is_durable_on_flush(sy: ModuleType) -> None:
    run = sy.start_run(experiment="async", synchronous=False)
    for step in range(500):
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 500}, step=step)
    run.flush()
    assert len(sy.get_metric_history(run.id, "loss")) == 500
    run.log_metric("loss", float("nan"), step=501)
    with pytest.raises(InvalidArgument) as info:
        run.flush()
    assert info.value.field == "metrics.loss"
    run.end()
    assert sy.get_run(run.id).metrics["loss"] == pytest.approx(1 / 500)


def test_artifacts_round_trip_files_and_directories(sy: ModuleType, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "weights.bin").write_bytes(b"\x00\x01" * 5000)
    (model_dir / "sub" / "config.json").write_text('{"a": 1}')
    note = tmp_path / "note.txt"
    note.write_text("hello")
    with sy.start_run(experiment="art") as run:
        file_art = run.log_artifact(note)
        tree_art = run.log_artifact(model_dir, name="model")
        run.log_artifact({"rmse": 0.2}, name="metrics.json")
    assert file_art.kind == "file" and tree_art.kind == "tree"
    names = {a.name for a in sy.get_run(run.id).artifacts}
    assert names == {"note.txt", "model", "metrics.json"}
    out = sy.download_artifact(run.id, "note.txt", tmp_path / "back.txt")
    assert out.read_text() == "hello"
    tree = sy.download_artifact(run.id, "model", tmp_path / "model-back")
    assert (tree / "weights.bin").read_bytes() == b"\x00\x01" * 5000
    assert (tree / "sub" / "config.json").read_text() == '{"a": 1}'
    lineage = sy.get_lineage(tree_art.artifact_id)
    assert [e.type for e in lineage.executions] == ["run"]


@pytest.mark.parametrize("bad_id", ["nope", "../../etc/passwd", "0" * 32, "%2e%2e%2f" * 4])
def test_unknown_or_hostile_run_ids_are_clear_errors(sy: ModuleType, bad_id: str) -> None:
    with pytest.raises((NotFound, InvalidArgument)) as info:
        sy.get_run(bad_id)
    assert info.value.field == "run_id"


def test_bad_input_names_the_field(sy: ModuleType) -> None:
    with pytest.raises(InvalidArgument) as info:
        sy.start_run(experiment="../x")
    assert info.value.field == "experiment"
    with sy.start_run(experiment="e") as run:
        with pytest.raises(InvalidArgument) as info:
            run.log_metric("ok/key", "not-a-number")  # type: ignore[arg-type]
        assert info.value.field is not None and "metrics" in info.value.field
        with pytest.raises(InvalidArgument) as info:
            run.log_artifact(b"x", name="../escape")
        assert info.value.field == "name"
    with pytest.raises(InvalidArgument) as info:
        sy.search_runs(filter="metrics.rmse <<< 1")
    assert info.value.field == "filter"


def test_heartbeats_keep_a_run_and_stop_with_it(sy: ModuleType) -> None:
    from shipyard.sdk import session

    tracking = session.current().tracking
    run = sy.start_run("beats")
    assert tracking.heartbeat_run(run.id, 30) == "RUNNING"
    run.end()
    assert tracking.heartbeat_run(run.id, 30) == "FINISHED"  # the client stops beating
