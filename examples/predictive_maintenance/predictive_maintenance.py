"""Predictive maintenance (seed 000's scenario) on Shipyard: IoT sensor readings, a failure
classifier trained and registered by a pipeline, and a drifting sensor caught by a drift check.

The story, one command (``python examples/predictive_maintenance/predictive_maintenance.py``):

1. A plant historian exports a month of sensor readings (temperature, vibration, pressure,
   rpm, machine type, hours since service) with whether the machine failed within 24 hours.
   Here they are generated (``generate_readings``) and written as Parquet under
   ``$SHIPYARD_HOME/warehouse/plant``.
2. The pipeline ``predictive-maintenance`` ingests them, trains a random-forest failure
   classifier, profiles its training features (the *baseline*: a few KB per feature, whatever
   the number of rows), and registers the model with the baseline's location and its ROC AUC.
3. Each day's readings are checked against the registered version's baseline with
   ``sy.detect_drift``. On day 3 the vibration sensors of line B get a bad firmware update:
   their readings come out 40% high. The check names ``vibration`` as drifted (and nothing
   else); the model, which has no way to know, starts predicting many more failures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import shipyard as sy
from shipyard.dsl import Artifact, Dataset, Input, Model, Output, component, pipeline
from shipyard.monitoring.profiles import DataProfile
from shipyard.monitoring.report import DriftReport

MODEL_NAME = "pump-failure"
EXPERIMENT = "pump-failure"
FEATURES = ["temperature", "vibration", "pressure", "rpm", "machine_type",
            "hours_since_service"]
CATEGORICAL = ["machine_type"]
TARGET = "failed_within_24h"
DRIFT_DAY = 3  # the day line B's vibration sensors start reading 40% high


def generate_readings(rows: int, seed: int, vibration_gain: float = 1.0) -> pd.DataFrame:
    """Sensor readings of a fleet of pumps; ``vibration_gain`` scales what line B's vibration
    sensors report (1.0: healthy sensors). Failures depend on the true vibration."""
    rng = np.random.default_rng(seed)
    machine = rng.choice(["A", "B", "C"], rows, p=[0.5, 0.3, 0.2])
    hours = rng.uniform(0, 2_000, rows)
    wear = hours / 2_000
    vibration = rng.lognormal(np.log(2.0) + 0.4 * wear, 0.35, rows)  # mm/s RMS
    temperature = rng.normal(65 + 8 * wear, 4.0, rows)  # bearing temperature, deg C
    pressure = rng.normal(6.0, 0.5, rows) - 0.6 * wear  # bar
    rpm = rng.normal(np.where(machine == "C", 2_900, 1_450), 30.0)
    risk = (-7.0 + 1.1 * vibration + 0.08 * (temperature - 65) - 1.5 * (pressure - 6.0)
            + 0.5 * (machine == "A"))
    failed = rng.random(rows) < 1.0 / (1.0 + np.exp(-risk))
    reported = np.where(machine == "B", vibration * vibration_gain, vibration)
    return pd.DataFrame({"temperature": temperature, "vibration": reported,
                         "pressure": pressure, "rpm": rpm, "machine_type": machine,
                         "hours_since_service": hours, TARGET: failed.astype(int)})


def export_history(rows: int, seed: int = 0) -> Path:
    """The historian's export of last month's readings, as Parquet in the local warehouse."""
    settings = sy.init()
    path = Path(settings.home, "warehouse", "plant", "readings.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_readings(rows, seed).to_parquet(path, index=False)
    return path


# -- the training pipeline ---------------------------------------------------------------
# Each component imports what it needs in its body: a step runs its recorded source in a
# fresh process, as Kubeflow's do.

@component
def ingest_readings(source: str, readings: Output[Dataset]) -> int:
    """Copy the historian's export into the pipeline (a versioned, content-addressed input)."""
    import pandas as pd

    frame = pd.read_parquet(source)
    frame.to_parquet(readings.path + "/readings.parquet", index=False)
    readings.metadata.update(rows=len(frame))
    return len(frame)


@component
def train_classifier(
    readings: Input[Dataset],
    features: list[str],
    categorical: list[str],
    target: str,
    experiment: str,
    model: Output[Model],
    baseline: Output[Artifact],
) -> NamedTuple("Outputs", [("roc_auc", float), ("run_id", str)]):  # type: ignore[valid-type]
    """Fit the failure classifier, package it, and profile its training features (the
    baseline later windows are compared with). The held-out ROC AUC and the baseline go to
    a tracking run, which the registered version links to."""
    from collections import namedtuple
    from pathlib import Path

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    import shipyard as sy
    from shipyard.monitoring.profiles import profile
    from shipyard.registry import flavors
    from shipyard.registry.signature import infer_signature

    frame = pd.read_parquet(readings.path + "/readings.parquet")
    train, test = train_test_split(frame, test_size=0.25, random_state=0,
                                   stratify=frame[target])
    encode = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
          categorical)], remainder="passthrough")
    classifier = Pipeline([("encode", encode),
                           ("model", RandomForestClassifier(n_estimators=100,
                                                            min_samples_leaf=20,
                                                            random_state=0))])
    classifier.fit(train[features], train[target])
    auc = float(roc_auc_score(test[target], classifier.predict_proba(test[features])[:, 1]))
    packaged = Path(model.path)
    packaged.mkdir(parents=True, exist_ok=True)
    flavors.save(classifier, packaged, signature=infer_signature(train[features]),
                 input_example=train[features].head(3))
    model.metadata.update(framework="sklearn", roc_auc=auc)
    # The baseline: per-feature statistics of the training data, a few KB a feature.
    stored = profile(train[features], categorical_features=categorical).to_bytes()
    Path(baseline.path + "/baseline.profile").write_bytes(stored)
    baseline.metadata.update(rows=len(train), bytes=len(stored))
    with sy.start_run(experiment=experiment, name="train") as run:
        run.log_metrics({"roc_auc": auc})
        run.log_artifact(stored, name="baseline.profile")
    print(f"ROC AUC on held-out readings: {auc:.3f}; baseline profile {len(stored)} bytes")
    return namedtuple("Outputs", ["roc_auc", "run_id"])(auc, run.id)


@component
def register_classifier(model: Input[Model], model_name: str, run_id: str,
                        roc_auc: float) -> int:
    """Register the classifier, linked to its training run (and so to its baseline)."""
    import shipyard as sy

    version = sy.register_model(model_name, model.path, run=run_id,
                                metrics={"roc_auc": roc_auc})
    return version.version


@pipeline(name="predictive-maintenance")
def predictive_maintenance(source: str, model_name: str = MODEL_NAME,
                           experiment: str = EXPERIMENT) -> None:
    ingest = ingest_readings(source=source)
    train = train_classifier(readings=ingest.outputs["readings"], features=FEATURES,
                             categorical=CATEGORICAL, target=TARGET, experiment=experiment)
    register_classifier(model=train.outputs["model"], model_name=model_name,
                        run_id=train.outputs["run_id"], roc_auc=train.outputs["roc_auc"])


# -- watching the sensors ----------------------------------------------------------------

@dataclass
class DailyCheck:
    day: int
    rows: int
    drifted: list[str]
    predicted_failure_rate: float
    report: DriftReport


def baseline_of(model_name: str = MODEL_NAME) -> DataProfile:
    """The latest registered version's baseline profile, from the run it links to."""
    version = sy.list_model_versions(model_name)[-1]
    assert version.run_id is not None, "the version was registered without its run"
    with tempfile.TemporaryDirectory() as tmp:
        path = sy.download_artifact(version.run_id, "baseline.profile", tmp)
        return DataProfile.from_bytes(Path(path).read_bytes())


def check_days(days: int, rows_per_day: int, model_name: str = MODEL_NAME,
               reports: Path | None = None) -> list[DailyCheck]:
    """Score each day's readings with the production model and check them for drift against
    its baseline; from ``DRIFT_DAY`` on, line B's vibration sensors read 40% high."""
    baseline = baseline_of(model_name)
    model = sy.load_model(f"models:/{model_name}/{sy.list_model_versions(model_name)[-1].version}")
    checks = []
    for day in range(1, days + 1):
        gain = 1.4 if day >= DRIFT_DAY else 1.0
        window = generate_readings(rows_per_day, seed=1_000 + day, vibration_gain=gain)
        failing = np.asarray(model.predict(window[FEATURES]))
        report = sy.detect_drift(baseline, window[FEATURES], categorical_features=CATEGORICAL)
        if reports is not None:
            report.to_html(reports / f"day-{day}.html")
        checks.append(DailyCheck(day, len(window), report.drifted_features,
                                 float(np.mean(failing)), report))
    return checks


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Seed 000: predictive maintenance")
    parser.add_argument("--rows", type=int, default=50_000, help="training readings")
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--rows-per-day", type=int, default=10_000)
    args = parser.parse_args(argv)

    source = export_history(args.rows)
    job = sy.run_pipeline(predictive_maintenance, {"source": str(source)})
    version = job.tasks["register-classifier"].outputs["Output"]
    auc = job.tasks["train-classifier"].outputs["roc_auc"]
    print(f"pipeline {job.state.lower()}: {MODEL_NAME} version {version}, ROC AUC {auc:.3f}")

    reports = Path(sy.init().home, "reports", "predictive-maintenance")
    checks = check_days(args.days, args.rows_per_day, reports=reports)
    for check in checks:
        found = ", ".join(check.drifted) or "no drift"
        print(f"day {check.day}: {check.rows} readings, predicted failures "
              f"{check.predicted_failure_rate:.1%}; {found}")
        for name in check.drifted:
            feature = check.report.features[name]
            print(f"    {name}: {feature.metric} {feature.value:.3f} >= {feature.threshold:.3f}"
                  f" (p = {feature.p_value:.1e}); mean {feature.signals['mean_reference']:.2f}"
                  f" -> {feature.signals['mean_current']:.2f}")
    print(f"HTML reports in {reports}")
    return {"version": version, "roc_auc": auc,
            "drifted": {check.day: check.drifted for check in checks}}


if __name__ == "__main__":
    print(json.dumps(main()["drifted"]))
