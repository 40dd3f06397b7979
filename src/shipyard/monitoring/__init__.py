"""Monitoring: drift and skew detection on mergeable profiles, performance estimation
without labels, monitors on endpoints, alerts and reports.

Modules: ``profiles`` (mergeable per-feature statistics), ``metrics`` (distances and tests),
``rules`` (the calibrated default rule), ``drift`` (``detect_drift`` and ``DriftReport``),
``report`` (HTML and JSON), ``estimation`` (performance without labels).
"""
