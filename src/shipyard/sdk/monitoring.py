"""Monitoring in the SDK: ``sy.detect_drift`` (a computation in the caller's process; it
needs no session or server)."""

from __future__ import annotations

from shipyard.monitoring.drift import detect_drift

__all__ = ["detect_drift"]
