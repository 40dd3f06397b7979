"""Drift detection as a pipeline step: ``detect_drift_op`` is a ``shipyard.dsl`` component
(Kubeflow style) that compares a reference and a current dataset (Parquet or CSV files or
folders) and writes the HTML report, the JSON report and its figures as metrics::

    from shipyard import dsl
    from shipyard.monitoring.components import detect_drift_op

    @dsl.pipeline(name="check-drift")
    def check(reference: str, current: str) -> None:
        ...
        drift = detect_drift_op(reference=ref_task.outputs["data"],
                                current=cur_task.outputs["data"],
                                categorical_features=["plan"])

Its return value (``drift.outputs["Output"]``) is the number of drifted features, so a
``dsl.If`` can start retraining on it.
"""

from __future__ import annotations

from shipyard import dsl

__all__ = ["detect_drift_op"]


@dsl.component
def detect_drift_op(reference: dsl.Input[dsl.Dataset], current: dsl.Input[dsl.Dataset],
                    report: dsl.Output[dsl.HTML], report_json: dsl.Output[dsl.Artifact],
                    metrics: dsl.Output[dsl.Metrics], categorical_features: list[str] | None = None,
                    false_alarm_rate: float = 0.005) -> int:
    """Compare ``current`` with ``reference``; return the number of drifted features."""
    from pathlib import Path

    from shipyard.monitoring.drift import detect_drift

    result = detect_drift(reference.path, current.path,
                             categorical_features=categorical_features or [],
                             false_alarm_rate=false_alarm_rate)
    result.to_html(report.path)
    Path(report_json.path).write_text(result.to_json())
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    return len(result.drifted_features)
