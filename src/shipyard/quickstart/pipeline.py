"""The lead-scoring pipeline of seed 002, written for Shipyard: ingest -> preprocess ->
train -> evaluate -> register (promoted only if it beats production).

The same pipeline retrains in the closed loop (``quickstart.loop``): with ``champion`` set
(the version serving when the monitor raised its alert) and ``campaign`` (the share of
fresh leads from the new campaign), the evaluate step also scores the champion on the same
held-out fresh leads, and the register step registers the candidate only if it wins,
without promoting it: the canary that the registration starts decides that.

The components follow Kubeflow's rules, because that is what users will copy: each one
imports what it needs inside its body (a step runs its recorded source in a fresh process)
and passes data through typed artifacts. Unlike the seed, nothing is pickled: the fitted
preprocessor and the final ``Pipeline(preprocessor, XGBRegressor)`` are packaged with
``shipyard.registry.flavors`` (skops plus XGBoost's own format), so the directory the train
step writes is exactly the model version the register step records.
"""

from __future__ import annotations

from typing import NamedTuple

from shipyard import dsl
from shipyard.dsl import ClassificationMetrics, Dataset, Input, Model, Output
from shipyard.quickstart.data import DATA_VERSION, DEFAULT_ROWS, DEFAULT_SEED

PIPELINE_NAME = "lead-scoring-quickstart"
MODEL_NAME = "lead-scoring"
EXPERIMENT = "lead-scoring"
# Lead-score bands of the confusion matrix: the seed bins scores into five classes, and
# fixed bands keep the matrices of different runs comparable.
SCORE_BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
TASKS = ("ingest-leads", "preprocess-leads", "train-model", "evaluate-model", "register-model")


class IngestOutputs(NamedTuple):
    features: list[str]
    target: str
    row_count: int


class EvaluationOutputs(NamedTuple):
    rmse: float
    mae: float
    r2: float
    run_id: str
    champion_rmse: float  # the champion's on the same leads; 0.0 without a champion


class RegistrationOutputs(NamedTuple):
    version: int
    semver: str
    promoted: bool
    reason: str
    production_version: int


@dsl.component
def ingest_leads(
    rows: int, seed: int, data_version: str, campaign: float, dataset: Output[Dataset]
) -> IngestOutputs:
    """Generate the lead table (the seed queried BigQuery here) and store it as Parquet;
    ``campaign``: the share of leads from the new campaign (fresh leads)."""
    from shipyard.quickstart.data import FEATURES, TARGET, generate_leads
    from shipyard.quickstart.pipeline import IngestOutputs

    frame = generate_leads(rows, seed, campaign=campaign)
    frame.to_parquet(dataset.path + "/leads.parquet", index=False)
    dataset.metadata.update(rows=len(frame), seed=seed, data_version=data_version,
                            campaign=campaign)
    print(f"ingested {len(frame)} leads (seed {seed}, {campaign:.0%} from the campaign)")
    return IngestOutputs(list(FEATURES), TARGET, len(frame))


@dsl.component
def preprocess_leads(
    dataset: Input[Dataset],
    features: list[str],
    target: str,
    test_size: float,
    train_dataset: Output[Dataset],
    test_dataset: Output[Dataset],
    preprocessor: Output[Model],
) -> list[str]:
    """Split the leads and fit imputation, scaling and one-hot encoding on the train part."""
    from pathlib import Path

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from shipyard.registry import flavors

    frame = pd.read_parquet(dataset.path + "/leads.parquet")
    X = frame[features]
    numeric = X.select_dtypes(include="number").columns.tolist()
    categorical = [c for c in features if c not in numeric]
    transformer = ColumnTransformer([
        ("num", Pipeline([("imputer", SimpleImputer(strategy="median")),
                          ("scaler", StandardScaler())]), numeric),
        ("cat", Pipeline([("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
                          ("onehot", OneHotEncoder(handle_unknown="ignore",
                                                  sparse_output=False))]), categorical),
    ])  # fmt: skip
    train, test = train_test_split(frame, test_size=test_size, random_state=42)
    transformer.fit(train[features])
    train.to_parquet(train_dataset.path + "/train.parquet", index=False)
    test.to_parquet(test_dataset.path + "/test.parquet", index=False)
    packaged = Path(preprocessor.path)
    packaged.mkdir(parents=True, exist_ok=True)
    flavors.save(transformer, packaged)
    names = [str(n) for n in transformer.get_feature_names_out()]
    print(f"{len(train)} train and {len(test)} test rows; {len(names)} features after encoding")
    return names


@dsl.component
def train_model(
    train_dataset: Input[Dataset],
    preprocessor: Input[Model],
    features: list[str],
    preprocessed_features: list[str],
    target: str,
    n_estimators: int,
    max_depth: int,
    learning_rate: float,
    model: Output[Model],
) -> str:
    """Fit XGBoost on the encoded leads and package preprocessor and booster as one model."""
    import os
    from pathlib import Path

    import pandas as pd
    import xgboost as xgb
    from sklearn.pipeline import Pipeline

    from shipyard.registry import flavors
    from shipyard.registry.signature import infer_signature

    train = pd.read_parquet(train_dataset.path + "/train.parquet")
    _, fitted = flavors.load(Path(preprocessor.path), flavors.LoadOptions())
    params = {"objective": "reg:squarederror", "n_estimators": n_estimators,
              "max_depth": max_depth, "learning_rate": learning_rate, "subsample": 0.8,
              "colsample_bytree": 0.8, "random_state": 42}  # fmt: skip
    booster = xgb.XGBRegressor(**params, n_jobs=min(4, os.cpu_count() or 1))
    booster.fit(fitted.transform(train[features]), train[target])
    servable = Pipeline([("preprocessor", fitted), ("model", booster)])
    # Every column may be missing at prediction time: the imputers fill the gaps.
    packaged = Path(model.path)
    packaged.mkdir(parents=True, exist_ok=True)
    flavors.save(
        servable,
        packaged,
        signature=infer_signature(train[features], nullable=True),
        input_example=train[features].head(5),
        metadata={"params": params, "target": target},
    )
    model.metadata.update(framework="xgboost", params=params)
    ranked = sorted(zip(preprocessed_features, booster.feature_importances_, strict=True),
                    key=lambda item: -float(item[1]))[:5]  # fmt: skip
    top = ", ".join(f"{name}: {float(value):.3f}" for name, value in ranked)
    print(f"top features: {top}")
    return top


@dsl.component
def evaluate_model(
    test_dataset: Input[Dataset],
    model: Input[Model],
    features: list[str],
    target: str,
    experiment: str,
    model_name: str,
    champion: int,
    metrics: Output[ClassificationMetrics],
) -> EvaluationOutputs:
    """Score the held-out leads with the packaged model and log the figures to a run; with
    a ``champion`` (a version of ``model_name``), score it on the same leads too."""
    import itertools
    import json
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from sklearn.metrics import confusion_matrix, mean_absolute_error, r2_score

    import shipyard as sy
    from shipyard.quickstart.pipeline import SCORE_BANDS, EvaluationOutputs
    from shipyard.registry import flavors

    test = pd.read_parquet(test_dataset.path + "/test.parquet")
    _, servable = flavors.load(Path(model.path), flavors.LoadOptions())
    y_true = test[target].to_numpy()
    y_pred = np.clip(servable.predict(test[features]), 0.0, 1.0)
    figures = {
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }
    champion_rmse = 0.0
    if champion > 0:  # the candidate against the champion, on the same held-out leads
        incumbent = sy.load_model(f"models:/{model_name}/{champion}")
        y_champion = np.clip(np.asarray(incumbent.predict(test[features]), dtype=float),
                             0.0, 1.0)
        champion_rmse = float(np.sqrt(np.mean((y_true - y_champion) ** 2)))
    bands = [f"{lo:.1f}-{hi:.1f}" for lo, hi in itertools.pairwise(SCORE_BANDS)]
    inner = np.asarray(SCORE_BANDS[1:-1])
    matrix = confusion_matrix(np.digitize(y_true, inner), np.digitize(y_pred, inner),
                              labels=range(len(bands)))  # fmt: skip
    metrics.log_confusion_matrix(bands, matrix.tolist())
    metrics.metadata.update(figures)
    report = Path(metrics.path + "/metrics.json")
    report.write_text(json.dumps({**figures, "bands": bands, "confusion_matrix": matrix.tolist()}))
    params = model.metadata.get("params", {})
    # The hyperparameters that vary between runs are params (columns in `shipyard runs
    # list`); the fixed ones and the sizes are tags, kept but out of the way.
    tuned = ("n_estimators", "max_depth", "learning_rate")
    with sy.start_run(experiment=experiment, name="evaluate") as run:
        run.log_params({k: str(params[k]) for k in tuned if k in params})
        run.log_metrics(figures)
        run.set_tags({**{k: str(v) for k, v in params.items() if k not in tuned},
                      "test_rows": str(len(test))})  # fmt: skip
        if champion > 0:
            run.log_metrics({"champion_rmse": champion_rmse})
            run.set_tags({"champion": f"{model_name}:{champion}"})
        run.log_artifact(str(report), name="metrics.json")
    print(", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    if champion > 0:
        print(f"champion {model_name}:{champion}: rmse {champion_rmse:.4f} on the same leads")
    return EvaluationOutputs(figures["rmse"], figures["mae"], figures["r2"], run.id,
                             champion_rmse)


@dsl.component
def register_model(
    model: Input[Model],
    metrics: Input[ClassificationMetrics],
    model_name: str,
    run_id: str,
    rmse: float,
    mae: float,
    r2: float,
    champion: int,
    champion_rmse: float,
) -> RegistrationOutputs:
    """Register the model once and promote it to ``production`` only if its RMSE is lower;
    with a ``champion``, register it only if it beat the champion on the same leads, and
    leave the promotion to the canary its registration starts."""
    from shipyard.quickstart.pipeline import RegistrationOutputs
    from shipyard.quickstart.registration import register_and_promote, register_if_better

    figures = {"rmse": rmse, "mae": mae, "r2": r2}
    if champion > 0:
        outcome = register_if_better(model.path, model_name, run_id=run_id, metrics=figures,
                                     champion=champion, champion_rmse=champion_rmse)
    else:
        outcome = register_and_promote(model.path, model_name, run_id=run_id, metrics=figures)
    print(outcome.reason)
    return RegistrationOutputs(outcome.version, outcome.semver, outcome.promoted,
                               outcome.reason, outcome.production_version)  # fmt: skip


@dsl.pipeline(name=PIPELINE_NAME)
def lead_scoring(
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    data_version: str = DATA_VERSION,
    test_size: float = 0.2,
    # Measured on the default data against 150 trees of depth 6 at 0.1: within 1% of that
    # RMSE at about half the training time, which matters on 2 cores.
    n_estimators: int = 100,
    max_depth: int = 5,
    learning_rate: float = 0.15,
    model_name: str = MODEL_NAME,
    experiment: str = EXPERIMENT,
    # The closed loop's retraining run: the share of fresh leads from the new campaign,
    # the version to beat (0: none, promote if better as usual) and the alert that asked
    # for it (kept with the run's arguments: the lineage from the alert to the run).
    campaign: float = 0.0,
    champion: int = 0,
    alert: str = "",
) -> None:
    """Seed 002's lead-scoring workflow on generated data."""
    ingest = ingest_leads(rows=rows, seed=seed, data_version=data_version, campaign=campaign)
    features = ingest.outputs["features"]
    target = ingest.outputs["target"]
    prep = preprocess_leads(
        dataset=ingest.outputs["dataset"], features=features, target=target, test_size=test_size
    )
    train = train_model(
        train_dataset=prep.outputs["train_dataset"],
        preprocessor=prep.outputs["preprocessor"],
        features=features,
        preprocessed_features=prep.outputs["Output"],
        target=target,
        n_estimators=n_estimators,
        max_depth=max_depth,
        learning_rate=learning_rate,
    )
    evaluation = evaluate_model(
        test_dataset=prep.outputs["test_dataset"],
        model=train.outputs["model"],
        features=features,
        target=target,
        experiment=experiment,
        model_name=model_name,
        champion=champion,
    )
    register_model(
        model=train.outputs["model"],
        metrics=evaluation.outputs["metrics"],
        model_name=model_name,
        run_id=evaluation.outputs["run_id"],
        rmse=evaluation.outputs["rmse"],
        mae=evaluation.outputs["mae"],
        r2=evaluation.outputs["r2"],
        champion=champion,
        champion_rmse=evaluation.outputs["champion_rmse"],
    )
