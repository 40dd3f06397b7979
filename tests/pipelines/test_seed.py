"""The reference scenario (seed 002): ingest -> preprocess -> train -> evaluate -> register
if better, with the blog's component bodies (BigQuery and Vertex calls swapped for local
files) and only the import line changed from kfp.dsl to shipyard.dsl."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, NamedTuple  # noqa: UP035 - the seed's spelling

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from shipyard.dsl import ClassificationMetrics, Dataset, Input, Model, Output, component, pipeline
from shipyard.pipelines import get_pipeline_run, get_task_log
from shipyard.store.schema import events, executions
from tests.pipelines.conftest import Env


@component(packages_to_install=["pandas", "pyarrow"], base_image="python:3.9")
def ingest_data(csv_path: str, output_dataset: Output[Dataset]) -> NamedTuple(
    "Outputs", [("features", list[str]), ("target", str)]
):
    import pandas as pd

    df = pd.read_csv(csv_path)
    output_path = output_dataset.path + "/data.csv"
    df.to_csv(output_path, index=False)
    target_column = "conversion_probability"
    feature_columns = [col for col in df.columns if col != target_column]
    print(f"ingested {len(df)} rows")
    from collections import namedtuple

    output = namedtuple("Outputs", ["features", "target"])
    return output(feature_columns, target_column)


@component(packages_to_install=["pandas", "scikit-learn", "pyarrow"], base_image="python:3.9")
def preprocess_data(
    input_dataset: Input[Dataset],
    features: List[str],  # noqa: UP006
    target: str,
    train_dataset: Output[Dataset],
    test_dataset: Output[Dataset],
    preprocessor: Output[Model],
) -> Dict[str, List[str]]:  # noqa: UP006
    import pickle

    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_csv(input_dataset.path + "/data.csv")
    X = df[features]
    y = df[target]
    numeric_features = X.select_dtypes(include=["int64", "float64"]).columns.tolist()
    categorical_features = X.select_dtypes(include=["object", "category"]).columns.tolist()
    numeric_transformer = Pipeline(
        steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())]
    )
    categorical_transformer = Pipeline(
        steps=[
            ("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    preprocessor_obj = ColumnTransformer(
        transformers=[
            ("num", numeric_transformer, numeric_features),
            ("cat", categorical_transformer, categorical_features),
        ]
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    preprocessor_obj.fit(X_train)
    X_train_transformed = preprocessor_obj.transform(X_train)
    X_test_transformed = preprocessor_obj.transform(X_test)
    if hasattr(X_train_transformed, "toarray"):
        X_train_transformed = X_train_transformed.toarray()
        X_test_transformed = X_test_transformed.toarray()
    train_data = np.hstack((X_train_transformed, y_train.values.reshape(-1, 1)))
    test_data = np.hstack((X_test_transformed, y_test.values.reshape(-1, 1)))
    np.save(train_dataset.path + "/train_data.npy", train_data)
    np.save(test_dataset.path + "/test_data.npy", test_data)
    with open(preprocessor.path + "/preprocessor.pkl", "wb") as f:
        pickle.dump(preprocessor_obj, f)
    all_feature_names = list(numeric_features)
    if categorical_features:
        ohe = preprocessor_obj.named_transformers_["cat"].named_steps["onehot"]
        for i, category in enumerate(ohe.categories_):
            for cat_value in category:
                all_feature_names.append(f"{categorical_features[i]}_{cat_value}")
    return {"preprocessed_features": all_feature_names}


@component(packages_to_install=["xgboost", "numpy", "scikit-learn"], base_image="python:3.9")
def train_model(
    train_dataset: Input[Dataset],
    preprocessed_features: List[str],  # noqa: UP006
    model: Output[Model],
) -> Dict[str, str]:  # noqa: UP006
    import pickle

    import numpy as np
    import xgboost as xgb

    train_data = np.load(train_dataset.path + "/train_data.npy")
    X_train = train_data[:, :-1]
    y_train = train_data[:, -1]
    xgb_model = xgb.XGBRegressor(
        objective="reg:squarederror", n_estimators=20, max_depth=3, random_state=42
    )
    xgb_model.fit(X_train, y_train)
    with open(model.path + "/model.pkl", "wb") as f:
        pickle.dump(xgb_model, f)
    importance = dict(zip(preprocessed_features, xgb_model.feature_importances_, strict=False))
    top = sorted(importance.items(), key=lambda x: x[1], reverse=True)[:5]
    return {"top_features": ", ".join(f"{k}: {v:.4f}" for k, v in top)}


@component(packages_to_install=["numpy", "scikit-learn"], base_image="python:3.9")
def evaluate_model(
    test_dataset: Input[Dataset],
    model: Input[Model],
    metrics: Output[ClassificationMetrics],
    model_display_name: str,
) -> Dict[str, float]:  # noqa: UP006
    import json
    import pickle

    import numpy as np
    from sklearn.metrics import (
        confusion_matrix,
        mean_absolute_error,
        mean_squared_error,
        r2_score,
    )

    test_data = np.load(test_dataset.path + "/test_data.npy")
    X_test = test_data[:, :-1]
    y_test = test_data[:, -1]
    with open(model.path + "/model.pkl", "rb") as f:
        model_obj = pickle.load(f)
    y_pred = model_obj.predict(X_test)
    mse = mean_squared_error(y_test, y_pred)
    metrics_dict = {
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y_test, y_pred)),
        "r2": float(r2_score(y_test, y_pred)),
    }
    with open(metrics.path + "/metrics.json", "w") as f:
        json.dump(metrics_dict, f)
    bins = 5
    y_binned = np.digitize(y_test, np.linspace(y_test.min(), y_test.max(), bins))
    y_pred_binned = np.digitize(y_pred, np.linspace(y_pred.min(), y_pred.max(), bins))
    cm = confusion_matrix(y_binned, y_pred_binned, labels=range(1, bins + 1))
    metrics.log_confusion_matrix(["bin_" + str(i) for i in range(1, bins + 1)], cm.tolist())
    return metrics_dict


@component(base_image="python:3.9", files={"predictor.py": "predictor.py"})
def register_model(
    model: Input[Model],
    preprocessor: Input[Model],
    metrics: Input[ClassificationMetrics],
    model_display_name: str,
) -> Dict[str, str]:  # noqa: UP006
    import json
    import os

    with open(metrics.path + "/metrics.json") as f:
        current_metrics = json.load(f)
    assert os.path.exists(model.path + "/model.pkl")
    assert os.path.exists(preprocessor.path + "/preprocessor.pkl")
    return {"deployment_decision": "deployed_first_version", "rmse": str(current_metrics["rmse"])}


@pipeline(name="lead-scoring-pipeline", pipeline_root="gs://unused/root")
def lead_scoring_pipeline(
    csv_path: str, model_display_name: str = "lead-scoring", max_rmse: float = 1.0
) -> None:
    ingest_task = ingest_data(csv_path=csv_path)
    preprocess_task = preprocess_data(
        input_dataset=ingest_task.outputs["output_dataset"],
        features=ingest_task.outputs["features"],
        target=ingest_task.outputs["target"],
    )
    train_task = train_model(
        train_dataset=preprocess_task.outputs["train_dataset"],
        preprocessed_features=preprocess_task.outputs["preprocessed_features"],
    )
    eval_task = evaluate_model(
        test_dataset=preprocess_task.outputs["test_dataset"],
        model=train_task.outputs["model"],
        model_display_name=model_display_name,
    )
    from shipyard import dsl

    with dsl.If(eval_task.outputs["rmse"] < max_rmse):
        register_model(
            model=train_task.outputs["model"],
            preprocessor=preprocess_task.outputs["preprocessor"],
            metrics=eval_task.outputs["metrics"],
            model_display_name=model_display_name,
        )


def _leads(path: Path, rows: int = 200) -> Path:
    rng = np.random.default_rng(7)
    pages = rng.integers(1, 30, rows)
    df = pd.DataFrame(
        {
            "company_size": rng.integers(5, 500, rows),
            "industry": rng.choice(["technology", "retail", "finance"], rows),
            "pages_visited": pages,
            "time_on_site": rng.normal(300, 60, rows).round(1),
        }
    )
    df["conversion_probability"] = (pages / 30 + rng.normal(0, 0.05, rows)).clip(0, 1)
    df.to_csv(path, index=False)
    return path


def test_seed_pipeline_runs_records_lineage_and_caches(env: Env) -> None:
    csv = _leads(env.tmp / "leads.csv")
    run = env.run(lead_scoring_pipeline, {"csv_path": str(csv)})

    assert run.state == "SUCCEEDED"
    assert set(run.tasks) == {
        "ingest-data", "preprocess-data", "train-model", "evaluate-model", "register-model"
    }  # fmt: skip
    assert all(t.state == "SUCCEEDED" and not t.cached for t in run.tasks.values())
    evaluation = run.tasks["evaluate-model"].outputs
    assert evaluation["Output"]["rmse"] < 1.0
    matrix = evaluation["metrics"].metadata["confusionMatrix"]
    assert len(matrix["rows"]) == 5
    assert (
        run.tasks["register-model"].outputs["Output"]["deployment_decision"].startswith("deployed")
    )
    assert "ingested 200 rows" in get_task_log(
        env.store, env.artifacts, "default", run.id, "ingest-data"
    )
    model = run.tasks["train-model"].outputs["model"]
    assert model.layout == "tree" and env.artifacts.exists(model.digest)

    with env.store.read() as conn:
        n_exec = conn.execute(select(func.count()).select_from(executions)).scalar()
        kinds = conn.execute(select(events.c.kind, func.count()).group_by(events.c.kind)).all()
    assert n_exec == 5
    # outputs: dataset, 3 from preprocess, model, metrics; inputs: 1 + 1 + 2 + 3
    assert dict(kinds) == {"output": 6, "input": 7}

    again = env.run(lead_scoring_pipeline, {"csv_path": str(csv)})
    assert all(t.cached for t in again.tasks.values())
    assert get_pipeline_run(env.store, "default", again.id).state == "SUCCEEDED"

    skipped = env.run(lead_scoring_pipeline, {"csv_path": str(csv), "max_rmse": 0.0})
    assert skipped.tasks["register-model"].state == "SKIPPED"
    assert skipped.state == "SUCCEEDED"
