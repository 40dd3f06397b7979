"""Monitors on endpoints: plain functions over ``(store, ctx or project, ...)``.

This module is the monitors' one entry point for their callers (the SDK's local port, the
REST router, the console, the worker's job, alert channels); the functions live in four
modules, each readable on its own:

- ``monitor_definitions``: creating, reading, listing, pausing, resuming and deleting
  monitors;
- ``monitor_running``: running a monitor (manually, or the next due one for the worker),
  recording the run in one transaction, and reading runs back (``history``,
  ``monitoring_stats``);
- ``judging``: judging one window of the request log (skew, drift, prediction drift,
  latency and performance objectives), no writes;
- ``alerting``: which alerts a recorded run opens or resolves, and reading alerts.

A run computes first and writes once: the run, the alerts it raises (each announced on the
``monitor-alert-raised`` topic in the same transaction) and the monitor's next run time go in
one transaction, so a run killed midway leaves nothing behind, and its window is judged again
when its lease runs out. Channels are sent after the commit (``channels.deliver_pending``).
"""

from __future__ import annotations

from shipyard.monitoring.alerting import KINDS, alert_of, list_alerts
from shipyard.monitoring.judging import judge
from shipyard.monitoring.monitor_definitions import (
    MAX_BASELINE_BYTES,
    MAX_HISTORY,
    create_monitor,
    delete_monitor,
    get_monitor,
    list_monitors,
    pause_monitor,
    resume_monitor,
)
from shipyard.monitoring.monitor_running import (
    LEASE_SECONDS,
    history,
    monitoring_stats,
    record_run,
    run_due,
    run_monitor,
)

__all__ = [
    "KINDS", "LEASE_SECONDS", "MAX_BASELINE_BYTES", "MAX_HISTORY", "alert_of",
    "create_monitor", "delete_monitor", "get_monitor", "history", "judge", "list_alerts",
    "list_monitors", "monitoring_stats", "pause_monitor", "record_run", "resume_monitor",
    "run_due", "run_monitor",
]
