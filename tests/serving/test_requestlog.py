"""Request-response logging: sampled predictions in Parquet (partitioned by endpoint and
hour, read back with DuckDB), ground truth attached by request id, and a SIGKILLed server
losing at most the batch it had not written yet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

import shipyard
from shipyard.sdk import session
from shipyard.security.credentials import read_credentials
from shipyard.serving.requestlog import Logged, RequestLog, predictions_sql
from tests.artifacts.conftest import BUCKET, s3_endpoint, s3_filesystem
from tests.server.conftest import assert_problem
from tests.server.live import free_port
from tests.serving.conftest import frame, linear
from tests.serving.served import P, Served, xgb_served

__all__ = ["s3_endpoint", "xgb_served"]


def predictions_in(root: Path) -> list[tuple[object, ...]]:
    files = sorted(root.glob("request-logs/predictions/**/*.parquet"))
    if not files:
        return []
    return duckdb.sql(
        f"SELECT request_id, instance, project, endpoint, hour, deployed_model_id, "
        f"model_version, features, prediction FROM read_parquet({[str(f) for f in files]}, "
        f"hive_partitioning=true) ORDER BY request_id, instance").fetchall()


def wait_for_rows(root: Path, request_ids: set[str], seconds: float = 20
                  ) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = [r for r in predictions_in(root) if r[0] in request_ids]
        if {r[0] for r in rows} == request_ids:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"logged requests did not appear in {seconds} s")


def test_predictions_are_logged_and_feedback_joins_them(xgb_served: Served) -> None:
    http = xgb_served.http
    root = Path(xgb_served.server.settings.artifacts)
    answer = http.post(f"{P}/endpoints/xgb:predict",
                       json={"instances": [[0.5] * 10, [1.0] * 10]})
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    oip = http.post("/v2/models/xgb/infer", json={"inputs": [
        {"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [0.25] * 10}]})
    rows = wait_for_rows(root, {request_id, oip.headers["x-request-id"]})
    mine = [r for r in rows if r[0] == request_id]
    assert [r[1] for r in mine] == [0, 1]
    assert {r[2:7] for r in mine} == {("p", "xgb", mine[0][4], "xgb:1", 1)}
    assert len(str(mine[0][4])) == len("2026-01-01T00")
    assert json.loads(str(mine[0][7])) == {f"f{i}": 0.5 for i in range(10)}
    assert [json.loads(str(r[8])) for r in mine] == answer.json()["predictions"]

    given = http.post(f"{P}/endpoints/xgb/feedback", json={"feedback": [
        {"request_id": request_id, "instance": 1, "ground_truth": 3.5}]})
    assert given.status_code == 200 and given.json() == {"recorded": 1}
    files = [str(f) for f in root.glob("request-logs/feedback/**/*.parquet")]
    joined = duckdb.sql(
        f"SELECT p.instance, f.ground_truth FROM read_parquet("
        f"{[str(f) for f in root.glob('request-logs/predictions/**/*.parquet')]}) p "
        f"JOIN read_parquet({files}) f USING (request_id, instance)").fetchall()
    assert joined == [(1, "3.5")]
    assert_problem(http.post(f"{P}/endpoints/nope/feedback", json={"feedback": [
        {"request_id": request_id, "ground_truth": 1}]}), 404)
    assert_problem(http.post(f"{P}/endpoints/xgb/feedback", json={"feedback": [
        {"request_id": "../../etc", "ground_truth": 1}]}), 400, "feedback[0].request_id")


def entry(request_id: str, when: float) -> Logged:
    return Logged(request_id=request_id, time=when, project="p", endpoint="e",
                  deployed_model_id="m:1", model_version=1, protocol="vertex",
                  latency_ms=1.0, rows=[[1, 2.0]], predictions=[0.5], names=["a", "b"])


def test_sampling_rate_and_hourly_partitions(tmp_path: Path) -> None:
    draws = iter([0.1, 0.9] * 50)
    half = RequestLog(root=tmp_path, rate=0.5, draw=lambda: next(draws))
    assert sum(half.sampled() for _ in range(100)) == 50
    assert not RequestLog(root=tmp_path, rate=0.0).sampled()
    written = half.write([entry("a", 1_767_225_600.0), entry("b", 1_767_229_200.0 + 5),
                          entry("c", 1_767_225_600.0 + 60)])
    hours = sorted(p.parent.name for p in written)
    assert hours == ["hour=2026-01-01T00", "hour=2026-01-01T01"]
    assert sorted(r[0] for r in predictions_in(tmp_path)) == ["a", "b", "c"]


def test_a_killed_server_loses_at_most_its_unwritten_batch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(home), SHIPYARD_URI=f"sqlite:///{tmp_path / 'db'}",
               SHIPYARD_ARTIFACTS=str(tmp_path / "blobs"), SHIPYARD_PROJECT="p",
               SHIPYARD_SERVING_LOG_FLUSH_SECONDS="0.5")
    shipyard.init(home=home, uri=env["SHIPYARD_URI"], artifacts=env["SHIPYARD_ARTIFACTS"],
                  project="p")
    try:
        shipyard.register_model("lead", linear(1.0), input_example=frame(5))
    finally:
        session.reset()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "shipyard.cli.main", "server", "--port",
                               str(port), "--no-worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        token = read_credentials(home)
        with httpx.Client(base_url=url, timeout=120,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.post(f"{P}/endpoints", json={"name": "ep"}).status_code == 200
            assert http.post(f"{P}/endpoints/ep/deployments",
                             json={"model": "lead", "version": 1}).status_code == 200
            first = {http.post(f"{P}/endpoints/ep:predict", json={"instances": [[i, 1.0]]}
                               ).headers["x-request-id"] for i in range(20)}
            root = tmp_path / "blobs"
            wait_for_rows(root, first)  # written: the flush interval passed
            second = {http.post(f"{P}/endpoints/ep:predict", json={"instances": [[i, 1.0]]}
                                ).headers["x-request-id"] for i in range(20)}
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    # Everything written before the kill reads back whole; of the last batch, requests are
    # there or not, never half a file.
    logged = {str(r[0]) for r in predictions_in(root)}
    assert first <= logged
    assert logged <= first | second
    for path in root.glob("request-logs/predictions/**/*.parquet"):
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()


@pytest.mark.parametrize("rate", ["-0.1", "1.5"])
def test_a_rate_outside_0_to_1_is_refused(tmp_path: Path, rate: str) -> None:
    from shipyard.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        RequestLog.for_artifacts(str(tmp_path), {"serving_log_rate": rate})
    assert caught.value.field == "serving_log_rate"


def test_an_s3_artifact_root_gets_the_same_partitioned_files(s3_endpoint: str) -> None:
    # A real S3 API (moto's server) through s3fs, as production does; the prefix is this
    # test's own.
    import pyarrow.parquet as pq

    root = f"{BUCKET}/request-log-{os.getpid()}-{time.monotonic_ns()}"
    logged = RequestLog.for_artifacts(f"s3://{root}", {})
    assert logged is not None
    written = logged.write([entry("a", 1_767_225_600.0), entry("b", 1_767_229_200.0 + 5),
                            entry("c", 1_767_225_600.0 + 60)])
    assert sorted(str(p.parent) for p in written) == [
        f"request-logs/predictions/project=p/endpoint=e/hour=2026-01-01T0{h}" for h in (0, 1)]
    logged.feedback("p", "e", [("a", 0, {"label": 1})])
    fs = s3_filesystem()
    keys = sorted(fs.find(f"{root}/request-logs"))
    assert len(keys) == 3 and all(k.endswith(".parquet") for k in keys)
    assert [k.split("/")[-4:-1] for k in keys if "/feedback/" in k] == [
        ["project=p", "endpoint=e", keys[0].split("/")[-2]]]
    rows = []
    for key in keys:
        if "/predictions/" in key:
            with fs.open(key, "rb") as f:
                rows += pq.read_table(f).to_pylist()
    assert sorted(r["request_id"] for r in rows) == ["a", "b", "c"]
    assert {json.loads(r["features"])["b"] for r in rows} == {2.0}
    feedback_key = next(k for k in keys if "/feedback/" in k)
    with fs.open(feedback_key, "rb") as f:
        assert json.loads(pq.read_table(f).to_pylist()[0]["ground_truth"]) == {"label": 1}
    # Nothing but the published files: no temporary object is left in the bucket.
    assert all("tmp" not in k.rsplit("/", 1)[-1] for k in keys)


def test_a_request_log_key_cannot_leave_its_root(tmp_path: Path) -> None:
    from shipyard.errors import InvalidArgument

    logged = RequestLog(root=tmp_path)
    with pytest.raises(InvalidArgument) as caught:
        logged.write([Logged(**{**entry("x", 0.0).__dict__, "endpoint": "../../etc"})])
    assert caught.value.field == "endpoint"
    assert not list(tmp_path.rglob("*.parquet"))


def _flushed(served: Served) -> Path:
    """The server's request log written out now (not at its next flush)."""
    served.server.app.state.serving.request_log.flush()
    return Path(served.server.settings.artifacts)


def test_failed_requests_are_logged_with_their_status_and_error(xgb_served: Served) -> None:
    # The linear model (sklearn) raises on a missing value; XGBoost's would not.
    http = xgb_served.http
    good = http.post(f"{P}/endpoints/linear:predict", json={"instances": [[3, 1.0]]})
    bad = http.post(f"{P}/endpoints/linear:predict",
                    json={"instances": [[4, 1.0], [None, 2.0]]})
    assert good.status_code == 200 and bad.status_code == 400, bad.text
    unrouted = http.post(f"{P}/endpoints/linear:predict", json={"instance": [[1, 1.0]]})
    assert unrouted.status_code == 400  # refused before routing: not logged
    ids = {r.headers["x-request-id"] for r in (good, bad, unrouted)}
    root = _flushed(xgb_served)
    files = [str(f) for f in root.glob("request-logs/predictions/**/*.parquet")]
    rows = duckdb.sql(
        "SELECT request_id, instance, deployed_model_id, model_version, features, "
        f"prediction, status, error FROM {predictions_sql(files)} "
        f"WHERE request_id IN {tuple(ids)} ORDER BY status, instance").fetchall()
    assert [r[0] for r in rows] == [good.headers["x-request-id"]] + \
        [bad.headers["x-request-id"]] * 2
    assert rows[0][1:4] == (0, "linear:1", 1) and rows[0][5:] == (
        json.dumps(good.json()["predictions"][0]), 200, None)
    assert [r[1] for r in rows[1:]] == [0, 1]
    assert {r[2:4] for r in rows[1:]} == {("linear:1", 1)}
    assert [json.loads(str(r[4])) for r in rows[1:]] == [
        {"visits": 4, "time_on_site": 1.0}, {"visits": None, "time_on_site": 2.0}]
    assert {r[5:7] for r in rows[1:]} == {(None, 400)}
    error = str(rows[1][7])
    assert error.startswith("invalid_argument: ") and len(error) <= 256
    assert error == rows[2][7]


def test_old_log_files_read_as_status_200_and_no_error(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    logged = RequestLog(root=tmp_path)
    (old,) = logged.write([entry("old", 1_767_225_600.0)])
    table = pq.read_table(tmp_path / str(old)).drop_columns(["status", "error"])
    pq.write_table(table, tmp_path / str(old))  # as written before the columns existed
    assert duckdb.sql(f"SELECT status, error FROM {predictions_sql([str(tmp_path / str(old))])}"
                      ).fetchall() == [(200, None)]
    failed = Logged(**{**entry("new", 1_767_225_600.0).__dict__, "status": 503,
                       "error": "unavailable: " + "x" * 500, "predictions": []})
    (new,) = logged.write([failed])
    files = [str(tmp_path / str(old)), str(tmp_path / str(new))]
    rows = duckdb.sql(f"SELECT request_id, status, length(error), prediction, endpoint "
                      f"FROM {predictions_sql(files, hive=True)} ORDER BY 1").fetchall()
    assert rows == [("new", 503, 256, None, "e"), ("old", 200, None, "0.5", "e")]
    types = {r[0]: r[1] for r in duckdb.sql(
        f"DESCRIBE SELECT * FROM {predictions_sql(files)}").fetchall()}
    assert (types["status"], types["error"]) == ("SMALLINT", "VARCHAR")


def test_a_canary_that_fails_more_often_is_rolled_back_and_one_that_fails_less_promoted(
        xgb_served: Served) -> None:
    # 'sqrt' takes square roots of its features before a linear fit: a negative feature
    # makes a NaN it then refuses, so every request holding one fails (400). 'xgb' takes any.
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from shipyard.context import RequestContext
    from shipyard.serving import rollouts
    from tests.serving.served import xgb_frame

    http, server = xgb_served.http, xgb_served.server
    data = xgb_frame(50).abs()
    settings = server.settings
    shipyard.init(home=settings.home, uri=settings.uri, artifacts=settings.artifacts,
                  project="p")
    try:
        shipyard.register_model("sqrt", make_pipeline(FunctionTransformer(np.sqrt),
                                                      LinearRegression()).fit(data, data["f0"]),
                                input_example=data.head())
    finally:
        session.reset()
    store, supervisor = server.app.state.shipyard.store, server.app.state.serving
    ctx = RequestContext(project="p", actor="canary-test")

    def split() -> dict[str, int]:
        return {d["id"]: d["traffic_percentage"]
                for d in http.get(f"{P}/endpoints/judged").json()["deployments"]}

    def deploy(model: str, percent: int) -> None:
        made = http.post(f"{P}/endpoints/judged/deployments",
                         json={"model": model, "version": 1, "traffic_percentage": percent})
        assert made.status_code == 200, made.text

    def canary(candidate: str) -> rollouts.CanaryRollout:
        rollout = rollouts.start_canary(store, ctx, "judged", candidate, percent=50,
                                        after_requests=15, max_latency_ratio=100.0,
                                        promote_alias=None)
        supervisor.refresh()
        # Every third request holds a negative feature: a third of sqrt's requests fail.
        statuses = [http.post(f"{P}/endpoints/judged:predict", json={"instances": [
            [-1.0 if i % 3 == 0 else 0.5] + [0.25] * 9]}).status_code for i in range(90)]
        assert set(statuses) <= {200, 400} and 400 in statuses
        _flushed(xgb_served)
        assert rollouts.judge_canaries(store, settings.artifacts, "w") is True
        return rollouts.get_rollout(store, "p", rollout.id)

    assert http.post(f"{P}/endpoints", json={"name": "judged"}).status_code == 200
    deploy("xgb", 100)
    deploy("sqrt", 0)
    worse = canary("sqrt:1")
    assert worse.state == "rolled_back" and worse.decision is not None
    candidate = worse.decision["candidate"]
    assert candidate["errors"] > 0 and candidate["requests"] >= 15
    assert worse.decision["champions"]["errors"] == 0
    assert "error rate" in worse.decision["reasons"][-1]
    assert ": worse (one-sided two-proportion z" in worse.decision["reasons"][-1]
    assert split() == {"xgb:1": 100}

    deploy("sqrt", 100)  # now the champion fails, and xgb:1 is the candidate
    better = canary("xgb:1")
    assert better.state == "promoted", better.decision
    assert better.decision is not None and better.decision["candidate"]["errors"] == 0
    assert better.decision["champions"]["errors"] > 0
    assert ": not worse" in better.decision["reasons"][-1]
    assert split() == {"xgb:1": 100}

    # sqrt as a shadow: its failures are logged too, as shadow rows under the caller's id.
    shadow = http.post(f"{P}/endpoints/judged/deployments",
                       json={"model": "sqrt", "version": 1, "shadow": True})
    assert shadow.status_code == 200, shadow.text
    failures, answers = supervisor.shadow_failures, supervisor.shadow_answers
    sent = {http.post(f"{P}/endpoints/judged:predict", json={"instances": [
        [value] + [0.25] * 9]}).headers["x-request-id"]: value for value in (-1.0, 0.5)}
    deadline = time.monotonic() + 30
    while (supervisor.shadow_failures, supervisor.shadow_answers) < (failures + 1,
                                                                      answers + 1):
        assert time.monotonic() < deadline, "the shadow was not asked"
        time.sleep(0.05)
    files = [str(f) for f in _flushed(xgb_served).glob(
        "request-logs/predictions/project=p/endpoint=judged/**/*.parquet")]
    rows = duckdb.sql(f"SELECT request_id, deployed_model_id, status, error, prediction "
                      f"FROM {predictions_sql(files)} WHERE shadow "
                      f"AND request_id IN {tuple(sent)}").fetchall()
    by_value = {sent[str(r[0])]: r[1:] for r in rows}
    assert set(by_value) == {-1.0, 0.5} and {r[0] for r in by_value.values()} == {"sqrt:1"}
    assert by_value[0.5][1:3] == (200, None) and by_value[0.5][3] is not None
    assert by_value[-1.0][1] == 400 and by_value[-1.0][3] is None
    assert str(by_value[-1.0][2]).startswith("invalid_argument: the model failed")
