"""The quickstart's monitoring step: a monitor on the endpoint catches a drifted mix of leads.

The monitor compares what the endpoint was asked (its request log) with the profile of the
leads the model was trained on, feature by feature, with the calibrated default rule. To
give it something to find, a marketing campaign sends a mix of leads unlike the training
data: half come from Facebook ads (a 9% source in training) and from companies a quarter
the usual size. The endpoint scores them as any client's leads (and logs them); then the
monitor judges the last hour of the log at once (``run_now``, what the worker does every
interval) and raises an alert when features drifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.quickstart.data import CATEGORICAL, FEATURES, generate_leads
from shipyard.quickstart.serving import ENDPOINT, records

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.monitoring.port import MonitoringPort
    from shipyard.serving.port import ServingPort

MONITOR = "lead-scoring-monitor"
CAMPAIGN_LEADS = 500
CHUNK = 100  # leads per request, as a batch client would send them


@dataclass(frozen=True)
class DriftFound:
    """What the monitor found in the campaign's leads: each drifted feature with its
    metric, value and threshold (largest first), and the alert it raised, if any."""

    monitor: str
    sent: int
    judged_rows: int
    features: int
    drifted: list[tuple[str, str, float, float]]  # feature, metric, value, threshold
    alert: str | None  # the open alert: "<severity> <kind> alert <id>"
    report: str = ""  # the monitor's HTML report
    alert_id: str | None = None
    raised: bool = False  # this run raised the alert (else it was open already)


def watch_for_drift(serving: ServingPort, monitoring: MonitoringPort, training: pd.DataFrame,
                    seed: int) -> DriftFound:
    """Make sure ``MONITOR`` watches ``ENDPOINT`` against ``training``, send the campaign's
    leads and judge the window they fell in."""
    from shipyard.errors import NotFound
    from shipyard.monitoring.config import check_config
    from shipyard.monitoring.profiles import profile

    try:
        monitoring.get_monitor(MONITOR)
    except NotFound:
        config = check_config(
            interval="1h", window=None, sampling_rate=1.0, thresholds=None, objectives=None,
            alert=["event"], alert_after=(1, 1), drift_windows=1, features=None,
            categorical_features=list(CATEGORICAL), feature_importance=None)
        baseline = profile(training[list(FEATURES)], categorical_features=list(CATEGORICAL))
        monitoring.create_monitor(MONITOR, endpoint=ENDPOINT,
                                  baseline_profile=baseline.to_bytes(), config=config)
    leads = records(campaign_leads(seed))
    for start in range(0, len(leads), CHUNK):
        serving.predict(ENDPOINT, leads[start:start + CHUNK])
    run = monitoring.run_monitor(MONITOR)
    features: dict[str, Any] = run.result.get("features", {})
    drifted = sorted(
        ((name, str(f["metric"]), float(f["drift_score"]), float(f["threshold"]))
         for name, f in features.items() if f.get("drifted")),
        key=lambda item: item[2] / item[3] if item[3] else item[2], reverse=True)
    # An alert is raised once and stays open while windows go on drifting: a rerun within
    # the hour shows the one already open.
    alert = alert_id = None
    if run.breached:
        open_alerts = monitoring.list_alerts(MONITOR, state="open")
        raised = [a for a in open_alerts if a.id in run.alerts] or open_alerts
        alert = (f"{raised[0].severity} {raised[0].kind} alert {raised[0].id}" if raised
                 else None)
        alert_id = raised[0].id if raised else None
    return DriftFound(monitor=MONITOR, sent=len(leads), judged_rows=int(run.result["rows"]),
                      features=len(features), drifted=drifted, alert=alert,
                      alert_id=alert_id, raised=alert_id in run.alerts)


def campaign_leads(seed: int) -> pd.DataFrame:
    """``CAMPAIGN_LEADS`` leads from a Facebook campaign aimed at small companies: half
    the leads come from Facebook, and company sizes are a quarter of the usual."""
    import numpy as np

    frame = generate_leads(CAMPAIGN_LEADS, seed + 3)[list(FEATURES)].copy()
    rng = np.random.default_rng(seed + 3)
    from_campaign = rng.random(len(frame)) < 0.5
    frame.loc[from_campaign, "campaign_source"] = "facebook"
    frame["company_size"] = np.maximum(1.0, np.round(frame["company_size"] / 4))
    return frame
