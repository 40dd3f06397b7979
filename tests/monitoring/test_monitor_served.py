"""A monitor over the request log a real server wrote (a live server with the linear model
of the serving tests deployed): answered and refused requests are told apart by the status
the server logged, refused ones (the caller's input, 400) are not server errors, drift is
judged on the answered rows, and the deployed version explains the window."""

from __future__ import annotations

from datetime import timedelta

from shipyard.context import RequestContext
from shipyard.monitoring import monitors as service
from shipyard.monitoring.config import check_config
from shipyard.monitoring.profiles import profile
from shipyard.store import open_store
from shipyard.store.types import utcnow
from tests.serving.conftest import frame
from tests.serving.served import P, Served, xgb_served

__all__ = ["xgb_served"]


def test_a_monitor_reads_what_a_live_server_logged(xgb_served: Served) -> None:
    http, settings = xgb_served.http, xgb_served.server.settings
    rows = frame(40, seed=3)
    for i in range(4):  # four answered requests of ten instances
        part = rows.iloc[i * 10:(i + 1) * 10]
        answered = http.post(f"{P}/endpoints/linear:predict",
                             json={"instances": part.values.tolist()})
        assert answered.status_code == 200, answered.text
    refused = http.post(f"{P}/endpoints/linear:predict",  # sklearn refuses a missing value
                        json={"instances": [[4, 1.0], [None, 2.0]]})
    assert refused.status_code == 400
    xgb_served.server.app.state.serving.request_log.flush()

    store = open_store(settings.uri, cached=False)
    try:
        service.create_monitor(
            store, RequestContext(project="p", actor="alice"), "linear-monitor",
            endpoint="linear", baseline_profile=profile(frame(2000, seed=1)).to_bytes(),
            config=check_config(interval="1h", window=None, sampling_rate=1.0,
                                thresholds=None, objectives={"error_rate": 0.01},
                                alert=["log"], alert_after=None, drift_windows=1,
                                features=None, categorical_features=None,
                                feature_importance=None))
        run = service.run_monitor(store, settings, "p", "linear-monitor",
                                  now=utcnow() + timedelta(seconds=1))
    finally:
        store.dispose()
    assert run.state == "succeeded", run.error
    errors = run.result["errors"]
    assert (errors["requests"], errors["server_errors"], errors["client_errors"]) == (5, 0, 1)
    assert errors["rate"] == 0.0 and not run.result["objectives"]["error_rate"]["breached"]
    assert run.result["rows"] == 40  # the answered instances only
    assert run.result["latency_ms"]["requests"] == 4
    assert set(run.result["features"]) == {"visits", "time_on_site"}
    explained = run.result["attributions"]
    assert explained["deployed_model_id"] == "linear:1" and explained["rows"] == 40
    # The linear model predicts 1.0 * visits: every attribution is visits'.
    assert explained["shares"]["visits"] > 0.99
