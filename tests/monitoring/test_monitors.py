"""Monitors on endpoints, in the service: skew, drift, prediction drift, objectives and
performance from the request log; k-of-n alerting that never sends an alert twice; runs
that are written whole or not at all; bad input. Real stores (SQLite and PostgreSQL), the
request log written by serving's own writer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, NotFound
from shipyard.events import bus
from shipyard.monitoring import alerting
from shipyard.monitoring import monitors as service
from shipyard.monitoring.config import check_config
from shipyard.monitoring.profiles import profile
from shipyard.monitoring.windows import read_window
from shipyard.serving import service as serving
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store import Store
from shipyard.store.schema import monitor_alerts, monitor_runs

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
CTX = RequestContext(project="default", actor="alice")


def baseline(rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40, 10, rows),
                         "plan": rng.choice(["free", "pro", "team"], rows, p=[0.5, 0.3, 0.2])})


def log_window(root: Path, start: datetime, *, rows: int = 2000, shift: float = 0.0,
               seed: int = 1, latency_ms: float = 5.0, endpoint: str = "leads",
               drop: str | None = None, truth: bool = False) -> list[str]:
    """Write ``rows`` logged predictions spread over the hour from ``start`` (ten requests
    of rows/10 instances) with serving's writer; the request ids."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + 10 * shift, 10, rows)
    plan = rng.choice(["free", "pro", "team"], rows, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    entries = []
    per = rows // 10
    for i in range(10):
        part = slice(i * per, (i + 1) * per)
        items = [{"age": float(a), "plan": str(p)} for a, p in zip(age[part], plan[part],
                                                                    strict=True)]
        if drop:
            for item in items:
                item.pop(drop)
        entries.append(Logged(
            request_id=f"{start:%H}-{seed}-{i}", time=(start + i * HOUR / 10).timestamp(),
            project="default", endpoint=endpoint, deployed_model_id="leads:1", model_version=1,
            protocol="vertex", latency_ms=latency_ms, rows=items,
            predictions=[float(s) for s in score[part]], names=None))
    log = RequestLog(root=root)
    log.write(entries)
    if truth:  # ground truth: label 1 where the score is above 0.5 (a perfect classifier)
        items = [(f"{start:%H}-{seed}-{i}", j, int(score[i * per + j] > 0.5))
                 for i in range(10) for j in range(per)]
        log.feedback("default", endpoint, items)
    return [e.request_id for e in entries]


@pytest.fixture
def setup(store: Store, tmp_path: Path) -> tuple[Store, Settings, Path]:
    settings = Settings(home=tmp_path, uri="sqlite://", artifacts=str(tmp_path / "artifacts"))
    serving.create_endpoint(store, CTX, "leads")
    return store, settings, tmp_path / "artifacts"


@pytest.fixture
def sqlite_setup(tmp_path: Path) -> tuple[Store, Settings, Path]:
    """As ``setup``, on SQLite only: for what does not depend on the database."""
    from shipyard.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/shipyard.db", cached=False)
    settings = Settings(home=tmp_path, uri="sqlite://", artifacts=str(tmp_path / "artifacts"))
    serving.create_endpoint(store, CTX, "leads")
    return store, settings, tmp_path / "artifacts"


def make(store: Store, name: str = "leads-monitor", *, data: pd.DataFrame | None = None,
         start_at: datetime = T0, **options: Any) -> Any:
    args: dict[str, Any] = {"interval": "1h", "window": None, "sampling_rate": 1.0,
                            "thresholds": None, "objectives": None, "alert": ["log"],
                            "alert_after": None, "drift_windows": 1, "features": None,
                            "categorical_features": None, "feature_importance": None}
    args.update(options)
    config = check_config(**args)
    frame = baseline() if data is None else data
    return service.create_monitor(store, CTX, name, endpoint="leads",
                                  baseline_profile=profile(frame).to_bytes(), config=config,
                                  baseline_uri="file:///data/train.parquet", start_at=start_at)


def test_a_run_finds_skew_and_drift_in_the_request_log(setup: Any) -> None:
    store, settings, root = setup
    make(store, feature_importance={"age": 2.0})
    log_window(root, T0, seed=1)
    log_window(root, T0 + HOUR, seed=2, shift=0.5)  # age +0.5 sd; plan unchanged
    quiet = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + HOUR)
    assert quiet.state == "succeeded" and quiet.result["rows"] == 2000
    assert quiet.result["breaches"] == [] and quiet.alerts == []
    assert quiet.result["features"]["age"]["drift"] is None  # nothing before the first hour

    run = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + 2 * HOUR)
    age, plan = run.result["features"]["age"], run.result["features"]["plan"]
    assert (age["kind"], age["metric"], age["drifted"]) == ("numeric", "ks", True)
    assert age["drift"]["drifted"] and age["importance"] == 2.0
    assert age["drift_score"] >= age["threshold"]
    assert (plan["kind"], plan["drifted"], plan["drift"]["drifted"]) == \
        ("categorical", False, False)
    assert run.result["prediction"]["drifted"]  # the scores follow age
    assert set(run.result["breaches"]) == {"skew", "drift", "prediction_drift"}
    assert run.result["latency_ms"]["requests"] == 10
    assert run.result["latency_ms"]["p95"] == pytest.approx(5.0)

    stats = service.monitoring_stats(store, "default", "leads")
    assert stats["feature_metrics"]["age"]["drift_score"] == age["drift_score"]
    assert stats["window_end"] == (T0 + 2 * HOUR).isoformat()

    alerts = service.list_alerts(store, "default")
    assert sorted(a.kind for a in alerts) == ["drift", "prediction_drift", "skew"]
    skew = next(a for a in alerts if a.kind == "skew")
    assert [f["name"] for f in skew.features] == ["age"]
    assert skew.features[0]["score"] == pytest.approx(2.0 * skew.features[0]["distance"])
    assert (skew.model_version, skew.baseline_uri) == (1, "file:///data/train.parquet")
    assert skew.deliveries[0]["state"] == "sent"
    assert [r.window_end for r in service.history(store, "default", "leads-monitor")] == \
        [T0 + 2 * HOUR, T0 + HOUR]


def test_alert_after_k_of_n_windows_and_never_twice(setup: Any) -> None:
    store, settings, root = setup
    make(store, alert_after=(2, 3), alert=["log", "event"], start_at=T0 + HOUR)
    bus.create_subscription(store, CTX, "alerts", "monitor-alert-raised")
    shifts = [0.5, 0.5, 0.5, 0.0, 0.5, 0.5]  # windows 1..6 (the hour before is quiet)
    log_window(root, T0, seed=100)
    for i, shift in enumerate(shifts, start=1):
        log_window(root, T0 + i * HOUR, seed=100 + i, shift=shift)
    raised: list[list[str]] = []
    for i in range(len(shifts)):  # the scheduled windows end at T0+2h, T0+3h, ...
        assert service.run_due(store, settings, "w1", now=T0 + (i + 2) * HOUR)
        skew = [a for a in service.list_alerts(store, "default") if a.kind == "skew"]
        raised.append([a.state for a in sorted(skew, key=lambda a: a.created_at)])
    assert not service.run_due(store, settings, "w1", now=T0 + 7 * HOUR + HOUR / 2)
    # 1 breach of 3: nothing; 2 of 3: one alert; still breaching: the same alert;
    # a quiet window resolves it; 2 of the last 3 again: a second alert.
    assert raised == [[], ["open"], ["open"], ["resolved"], ["resolved", "open"],
                      ["resolved", "open"]]
    events: list[dict[str, Any]] = []
    while pulled := bus.pull(store, "default", "alerts", max_messages=50):  # one key: in turn
        events += [m.data for m in pulled]
        bus.ack(store, "default", "alerts", [m.lease_token for m in pulled])
    skew_events = [e for e in events if e["kind"] == "skew"]
    assert len(skew_events) == 2  # one per alert, none for the windows in between
    assert {(e["event"], e["monitor"], e["endpoint"], e["features"][0]) for e in skew_events} \
        == {("monitor-alert-raised", "leads-monitor", "leads", "age")}
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(monitor_runs)).scalar() == 6


def test_a_run_killed_midway_writes_nothing_and_runs_again(
        setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, settings, root = setup
    make(store, alert=["event"], start_at=T0 + HOUR)
    log_window(root, T0, seed=1)
    log_window(root, T0 + HOUR, seed=2, shift=0.5)
    real_announce = alerting.announce  # where a run's new alerts are announced

    def crash(*args: Any, **kwargs: Any) -> str:
        real_announce(*args, **kwargs)  # the event is written, then the process "dies"
        raise SystemExit("killed")

    monkeypatch.setattr(alerting, "announce", crash)
    with pytest.raises(SystemExit):
        service.run_due(store, settings, "doomed", now=T0 + 2 * HOUR)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(monitor_runs)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(monitor_alerts)).scalar() == 0
    assert bus.list_topics(store, "default") == [] or all(
        t.name != "monitor-alert-raised" for t in bus.list_topics(store, "default"))
    monkeypatch.setattr(alerting, "announce", real_announce)
    # The lease (5 min by default) holds the monitor for the dead worker...
    assert not service.run_due(store, settings, "w2", now=T0 + 2 * HOUR + timedelta(minutes=1))
    # ...and once it ran out, the same window is judged again, once.
    assert service.run_due(store, settings, "w2", now=T0 + 2 * HOUR + timedelta(minutes=6))
    runs = service.history(store, "default", "leads-monitor")
    assert [(r.window_end, r.trigger, r.breached) for r in runs] == \
        [(T0 + 2 * HOUR, "schedule", True)]
    assert len(service.list_alerts(store, "default")) == 3


def test_performance_from_feedback_and_objectives(sqlite_setup: Any) -> None:
    store, settings, root = sqlite_setup
    make(store, objectives={"accuracy": 0.9, "latency_p95_ms": 50.0, "roc_auc": 0.99},
         alert=["log"])
    log_window(root, T0, seed=1, truth=True, latency_ms=80.0)
    run = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + HOUR)
    performance = run.result["performance"]
    assert performance["rows"] == 2000 and performance["task"] == "classification"
    assert performance["accuracy"] == 1.0 and performance["roc_auc"] == 1.0
    objectives = run.result["objectives"]
    assert objectives["accuracy"] == {"value": 1.0, "limit": 0.9, "breached": False}
    assert objectives["latency_p95_ms"]["breached"] and run.result["breaches"] == ["latency"]
    latency = service.list_alerts(store, "default", monitor="leads-monitor")
    assert [(a.kind, a.severity) for a in latency] == [("latency", "critical")]
    assert latency[0].features[0]["name"] == "latency_p95_ms"


def test_bad_input_is_a_finding_or_names_the_field(setup: Any) -> None:
    store, settings, root = setup
    with pytest.raises(NotFound) as unknown:
        service.create_monitor(store, CTX, "m", endpoint="nope",
                               baseline_profile=profile(baseline()).to_bytes(),
                               config=check_config(**{**DEFAULTS}))
    assert unknown.value.field == "endpoint"
    for options, field in [({"thresholds": {"age": -1}}, "thresholds"),
                           ({"thresholds": "high"}, "thresholds"),
                           ({"interval": "soon"}, "interval"),
                           ({"alert": ["pager"]}, "alert"),
                           ({"alert": ["webhook:ftp://x"]}, "alert"),
                           ({"alert_after": (3, 2)}, "alert_after"),
                           ({"objectives": {"speed": 1}}, "objectives"),
                           ({"sampling_rate": 0}, "sampling_rate")]:
        with pytest.raises(InvalidArgument) as bad:
            check_config(**{**DEFAULTS, **options})
        assert bad.value.field == field, options
    with pytest.raises(InvalidArgument) as unknown_feature:
        make(store, "m2", features=["age", "income"])
    assert unknown_feature.value.field == "features" and "income" in unknown_feature.value.message

    make(store)
    empty = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + HOUR)
    assert empty.state == "succeeded" and empty.result["rows"] == 0
    assert "holds no logged requests" in empty.result["findings"][0]
    assert empty.result["breaches"] == []

    assert {name: (m["drift_score"], m["compared"], m["drifted"])
            for name, m in empty.result["features"].items()} == \
        {"age": (0.0, False, False), "plan": (0.0, False, False)}  # nothing measured

    log_window(root, T0 + HOUR, seed=3, drop="plan")  # the callers stopped sending plan
    missing = service.run_monitor(store, settings, "default", "leads-monitor",
                                  now=T0 + 2 * HOUR)
    assert "column 'plan' is missing from the request log: no logged request carries it, " \
        "so it is scored as all missing" in missing.result["findings"]
    plan = missing.result["features"]["plan"]
    # All 2000 values missing where the baseline had none: a missing-rate change of 1.0.
    assert (plan["metric"], plan["drift_score"], plan["compared"], plan["drifted"]) == \
        ("missing_rate", 1.0, False, True)
    assert plan["threshold"] == 0.01 and plan["p_value"] < 1e-6
    assert missing.result["features"]["age"]["drifted"] is False
    assert missing.result["breaches"] == ["skew"]


DEFAULTS: dict[str, Any] = {
    "interval": "1h", "window": None, "sampling_rate": 1.0, "thresholds": None,
    "objectives": None, "alert": None, "alert_after": None, "drift_windows": 1,
    "features": None, "categorical_features": None, "feature_importance": None}


def test_fixed_thresholds_and_sampling(sqlite_setup: Any) -> None:
    store, settings, root = sqlite_setup
    make(store, thresholds={"plan": 0.05}, sampling_rate=0.5)
    log_window(root, T0, seed=5)
    run = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + HOUR)
    assert 800 < run.result["rows"] < 1200  # half of 2000, by a hash of the request
    columns = [("age", "numeric"), ("plan", "categorical")]
    again = read_window(root / "request-logs", "default", "leads", T0, T0 + HOUR, columns,
                        sampling_rate=0.5)
    assert again.rows == run.result["rows"]  # the same sample every time
    plan = run.result["features"]["plan"]
    assert (plan["metric"], plan["threshold"]) == ("l_infinity", 0.05)
    assert run.result["features"]["age"]["metric"] == "ks"
    assert json.dumps(run.result)


def test_the_worker_source_runs_each_due_window_once(setup: Any, tmp_path: Path) -> None:
    from shipyard.monitoring.jobs import MonitorRuns
    from shipyard.runtime import Runtime
    from shipyard.worker.sources import default_sources

    store, settings, root = setup
    assert any(isinstance(s, MonitorRuns) for s in default_sources())
    # Windows ending about 2 h and 1 h ago are due; the next ends in 10 minutes.
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    make(store, start_at=now - 3 * HOUR)
    log_window(root, now - 2 * HOUR - HOUR / 2, seed=1)
    runtime = Runtime(settings=settings, store=store, artifacts=None)  # type: ignore[arg-type]
    source = MonitorRuns()
    assert source.claim_and_run(runtime, "worker-1")
    assert source.claim_and_run(runtime, "worker-1")
    assert not source.claim_and_run(runtime, "worker-1")  # the next is due in an hour
    runs = service.history(store, "default", "leads-monitor")
    assert [(r.window_end, r.trigger) for r in runs] == \
        [(now - HOUR, "schedule"), (now - 2 * HOUR, "schedule")]
    assert runs[1].result["rows"] == 1000 and runs[0].result["rows"] == 1000
    assert service.get_monitor(store, "default", "leads-monitor").next_run_at == now


SEED_002_SECTION_10 = """
print("Feature drift metrics:")
for feature, metrics in monitoring_data["feature_metrics"].items():
    print(f" {feature}: drift score = {metrics['drift_score']:.4f}")
"""  # seed 002, section 10, as written (the lines after get_monitoring_metrics())


def test_seed_002_reads_a_number_for_every_feature(sqlite_setup: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store, settings, root = sqlite_setup
    data = baseline().assign(visits=np.arange(4000) % 7, region=np.arange(4000) % 3)
    make(store, data=data)
    log_window(root, T0, seed=4, shift=0.5)  # age moved; visits and region never logged
    service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + HOUR)
    monitoring_data = service.monitoring_stats(store, "default", "leads")
    exec(SEED_002_SECTION_10, {"monitoring_data": monitoring_data})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Feature drift metrics:"
    scores = {line.split(":")[0].strip(): float(line.rsplit("=", 1)[1]) for line in lines[1:]}
    assert list(scores) == ["age", "plan", "visits", "region"]
    metrics = monitoring_data["feature_metrics"]
    assert scores["age"] > 0.15  # KS of a 0.5 sd shift
    assert metrics["plan"]["metric"] == "chi_square"
    assert scores["plan"] < metrics["plan"]["threshold"]  # no change
    assert scores["visits"] == scores["region"] == 1.0  # all missing now
    assert {f for f, m in monitoring_data["feature_metrics"].items() if m["drifted"]} == \
        {"age", "visits", "region"}
    assert sum("is missing from the request log" in f
               for f in monitoring_data["findings"]) == 2


def write_log_file(root: Path, start: datetime, statuses: list[int], *, seed: int,
                   with_status: bool = True) -> None:
    """One request-log file in the log's layout, one request of 5 instances per status
    (``with_status=False``: a file from before the log had status and error columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    count = 5 * len(statuses)
    status = np.repeat(np.asarray(statuses, dtype=np.int16), 5)
    answered = status < 400
    age = rng.normal(40, 10, count)
    plan = rng.choice(["free", "pro", "team"], count, p=[0.5, 0.3, 0.2])
    columns: dict[str, Any] = {
        "request_id": [f"s{seed}-{i // 5}" for i in range(count)],
        "instance": pa.array(np.tile(np.arange(5), len(statuses)), pa.int32()),
        "time": pa.array([start + (i // 5) * HOUR / len(statuses) for i in range(count)],
                         pa.timestamp("us", tz="UTC")),
        "deployed_model_id": ["leads:1"] * count, "model_version": [1] * count,
        "protocol": ["vertex"] * count, "latency_ms": [5.0] * count,
        "features": [json.dumps({"age": float(a), "plan": str(p)})
                     for a, p in zip(age, plan, strict=True)],
        "prediction": [json.dumps(0.5) if ok else None for ok in answered],
        "shadow": [False] * count}
    if with_status:
        columns["status"] = pa.array(status, pa.int16())
        columns["error"] = [None if s < 400 else ("unavailable: replica busy" if s == 503
                                                  else f"status {s}") for s in status]
    folder = (root / "request-logs" / "predictions" / "project=default" / "endpoint=leads"
              / f"hour={start:%Y-%m-%dT%H}")
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / f"file-{seed}.parquet")


def test_error_rate_objective_alerts_after_k_of_n_windows(sqlite_setup: Any) -> None:
    store, settings, root = sqlite_setup
    make(store, objectives={"error_rate": 0.05}, alert_after=(2, 2))
    # 100 requests a window: 8 answered 503, 2 answered 500, 5 refused with 400 (the
    # caller's input: not a server error), 85 answered.
    failing = [503] * 8 + [500] * 2 + [400] * 5 + [200] * 85
    write_log_file(root, T0, failing, seed=1)
    write_log_file(root, T0 + HOUR, failing, seed=2)
    write_log_file(root, T0 + 2 * HOUR, [200] * 100, seed=3, with_status=False)  # old file
    runs = [service.run_monitor(store, settings, "default", "leads-monitor",
                                now=T0 + (i + 1) * HOUR) for i in range(3)]
    first = runs[0].result
    assert first["errors"] == {"requests": 100, "server_errors": 10, "client_errors": 5,
                               "rate": 0.1, "common": {"unavailable: replica busy": 8,
                                                       "status 500": 2}}
    assert first["objectives"]["error_rate"] == {"value": 0.1, "limit": 0.05,
                                                 "breached": True}
    assert first["rows"] == 85 * 5  # drift is judged on the answered requests
    assert first["breaches"] == ["error_rate"] and runs[0].alerts == []  # 1 of 2 windows
    assert runs[1].result["breaches"] == ["error_rate"] and len(runs[1].alerts) == 1
    (alert,) = service.list_alerts(store, "default")
    assert (alert.kind, alert.severity, alert.state) == ("error_rate", "critical", "resolved")
    assert alert.features[0]["name"] == "error_rate" and alert.features[0]["value"] == 0.1
    assert "error-rate objective missed in 2 of the last 2 windows" in alert.message
    quiet = runs[2].result  # a file without status columns: every request answered
    assert quiet["errors"]["rate"] == 0.0 and quiet["rows"] == 500
    assert quiet["breaches"] == [] and runs[2].alerts == []
    assert service.monitoring_stats(store, "default", "leads")["errors"]["requests"] == 100
