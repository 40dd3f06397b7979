"""Monitors through the public SDK, in local mode and through a real server: the same
findings, runs, alerts, stats and report, and the same errors naming the field."""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.serving.requestlog import Logged, RequestLog


def _log(root: Path, project: str, endpoint: str, shift: float, rows: int = 1000) -> None:
    """Ten logged requests from the last few minutes, written by serving's own writer."""
    rng = np.random.default_rng(7)
    age = rng.normal(40 + 10 * shift, 10, rows)
    plan = rng.choice(["free", "pro"], rows)
    now = time.time()
    per = rows // 10
    RequestLog(root=root).write([Logged(
        request_id=f"r{i}", time=now - 300 + i, project=project, endpoint=endpoint,
        deployed_model_id="leads:1", model_version=1, protocol="vertex", latency_ms=4.0,
        rows=[{"age": float(a), "plan": str(p)} for a, p in
              zip(age[i * per:(i + 1) * per], plan[i * per:(i + 1) * per], strict=True)],
        predictions=[0.5] * per, names=None) for i in range(10)])


def test_a_monitor_finds_skew_raises_an_alert_and_reports(
        sy: ModuleType, tmp_path: Path) -> None:
    endpoint = sy.create_endpoint("leads")
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.normal(40, 10, 3000),
                          "plan": rng.choice(["free", "pro"], 3000)})
    monitor = sy.create_monitor("leads", train, name="leads-watch", interval="1h",
                                alert=["log", "event"], feature_importance={"age": 0.8})
    assert (monitor.name, monitor.features) == ("leads-watch", ["age", "plan"])
    assert [m.name for m in sy.list_monitors("leads")] == ["leads-watch"]
    _log(tmp_path / "blobs", "contract", "leads", shift=0.5)

    run = monitor.run_now()
    assert run.state == "succeeded" and run.result["rows"] == 1000
    assert run.result["breaches"] == ["skew"] and len(run.alerts) == 1
    stats = endpoint.monitoring_stats()
    assert stats["feature_metrics"]["age"]["drifted"] is True
    assert stats["feature_metrics"]["age"]["drift_score"] >= \
        stats["feature_metrics"]["age"]["threshold"]
    assert stats["feature_metrics"]["plan"]["drifted"] is False
    assert sy.monitoring_stats("leads") == stats
    (alert,) = sy.list_alerts()
    assert (alert.kind, alert.state, alert.monitor, alert.endpoint) == \
        ("skew", "open", "leads-watch", "leads")
    assert alert.features[0]["name"] == "age" and alert.features[0]["importance"] == 0.8
    assert [d["state"] for d in alert.deliveries] == ["sent", "sent"]
    assert monitor.alerts(state="open") == [alert]
    assert [r.id for r in monitor.history()] == [run.id]

    page = monitor.report(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == page
    assert "age: ks by window" in page and "plotly" in page.lower()

    with pytest.raises(NotFound) as unknown:
        sy.create_monitor("nope", train)
    assert unknown.value.field == "endpoint"
    with pytest.raises(InvalidArgument) as bad:
        sy.create_monitor("leads", train, name="m2", thresholds={"age": "high"})
    assert bad.value.field == "thresholds"
    with pytest.raises(InvalidArgument) as unknown_feature:
        sy.create_monitor("leads", train, name="m3", features=["income"])
    assert unknown_feature.value.field == "features"
    monitor.delete()
    assert sy.list_monitors() == []
    with pytest.raises(NotFound):
        sy.get_monitor("leads-watch")


def test_a_paused_monitor_is_not_due_until_resumed(sy: ModuleType, tmp_path: Path) -> None:
    sy.create_endpoint("leads")
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.normal(40, 10, 500)})
    monitor = sy.create_monitor("leads", train, name="leads-watch", interval="1h",
                                attribution_rows=0)
    assert not monitor.paused and monitor.config["attribution_rows"] == 0
    with pytest.raises(InvalidArgument) as rows:
        sy.create_monitor("leads", train, name="m2", attribution_rows=True)
    assert rows.value.field == "attribution_rows"

    paused = monitor.pause()
    assert paused.paused and sy.get_monitor("leads-watch").paused
    assert [m.state.state for m in sy.list_monitors()] == ["paused"]
    # Pausing stops the schedule, not the monitor: a manual run still judges a window.
    assert monitor.run_now().state == "succeeded"
    assert monitor.pause().paused  # twice is still paused

    before = time.time()
    resumed = monitor.resume()
    assert not resumed.paused and not sy.get_monitor("leads-watch").paused
    # The next scheduled window ends after the resume, within one interval.
    assert before < resumed.next_run_at.timestamp() <= time.time() + 3600

    gone = type(monitor)(monitor.state.model_copy(update={"name": "gone"}))
    with pytest.raises(NotFound):
        gone.pause()
    with pytest.raises(NotFound):
        gone.resume()
    with pytest.raises(InvalidArgument) as bad:
        type(monitor)(monitor.state.model_copy(update={"name": "../x"})).pause()
    assert bad.value.field == "name"
