"""Seed 002's lead-scoring pipeline, running on Shipyard instead of Vertex AI.

The components, their signatures and the pipeline's wiring are the blog post's; what changed
is only what had to for running locally, each marked ``# Shipyard:``:

- ``from kfp.dsl import ...`` became ``from shipyard.dsl import ...``;
- BigQuery became a local table: ``{project_id}.{dataset_id}.{table_id}`` is the CSV file
  ``$SHIPYARD_HOME/warehouse/{project_id}/{dataset_id}/{table_id}.csv``;
- pickles became safe formats: the preprocessor is packaged with ``shipyard.registry.flavors``
  (skops) and the booster is saved in XGBoost's own JSON format;
- Vertex AI Experiments became ``sy.start_run`` and the Vertex Model Registry (with its
  hand-written promotion logic and ``predictor.py``) became ``sy.register_model`` plus
  ``sy.promote_if_better``: preprocessor and booster are registered together as one
  servable version, promoted to ``production`` only if its RMSE is lower, with the semantic
  version bumped.

Run it with ``python examples/lead_scoring/lead_scoring_pipeline.py``.
"""

from typing import Dict, List, NamedTuple  # noqa: UP035 - the seed's spelling, kept

import shipyard as sy
from shipyard.dsl import (  # Shipyard: was `from kfp.dsl import ...`
    ClassificationMetrics,
    Dataset,
    Input,
    Model,
    Output,
    component,
    pipeline,
)

PROJECT_ID = "sofos-mlops"
REGION = "europe-west1"
BQ_DATASET = "marketing"
BQ_TABLE = "leads"
MODEL_DISPLAY_NAME = "lead-scoring"
PIPELINE_ROOT = "gs://sofos-mlops-pipelines/lead-scoring"  # recorded; artifacts stay local


@component(
    packages_to_install=["google-cloud-bigquery", "pandas", "pyarrow"],
    base_image="python:3.9",
)
def ingest_data(
    project_id: str,
    dataset_id: str,
    table_id: str,
    output_dataset: Output[Dataset],
) -> NamedTuple("Outputs", [("features", List[str]), ("target", str)]):  # noqa: UP006
    import os

    import pandas as pd

    # Shipyard: the BigQuery query became a read of the local warehouse table.
    warehouse = os.path.join(os.environ["SHIPYARD_HOME"], "warehouse")
    df = pd.read_csv(os.path.join(warehouse, project_id, dataset_id, f"{table_id}.csv"))

    # Save to the artifact store
    output_path = output_dataset.path + "/data.csv"
    df.to_csv(output_path, index=False)

    # Identify target column - assuming it's 'conversion_probability'
    target_column = "conversion_probability"
    feature_columns = [col for col in df.columns if col != target_column]

    from collections import namedtuple

    output = namedtuple("Outputs", ["features", "target"])
    return output(feature_columns, target_column)


@component(
    packages_to_install=["pandas", "scikit-learn", "pyarrow"],
    base_image="python:3.9",
)
def preprocess_data(
    input_dataset: Input[Dataset],
    features: List[str],  # noqa: UP006
    target: str,
    train_dataset: Output[Dataset],
    test_dataset: Output[Dataset],
    preprocessor: Output[Model],
) -> Dict[str, List[str]]:  # noqa: UP006
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from shipyard.registry import flavors  # Shipyard: instead of pickle
    from shipyard.registry.signature import infer_signature

    # Load data
    df = pd.read_csv(input_dataset.path + "/data.csv")

    # Split features and target
    X = df[features]
    y = df[target]

    # Identify numeric and categorical columns
    numeric_features = X.select_dtypes(include=["int64", "float64"]).columns.tolist()
    categorical_features = X.select_dtypes(include=["object", "category"]).columns.tolist()

    # Define preprocessing for numeric columns
    numeric_transformer = Pipeline(
        steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())]
    )

    # Define preprocessing for categorical columns
    categorical_transformer = Pipeline(
        steps=[
            ("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )

    # Combine preprocessing steps
    preprocessor_obj = ColumnTransformer(
        transformers=[
            ("num", numeric_transformer, numeric_features),
            ("cat", categorical_transformer, categorical_features),
        ]
    )

    # Split data
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

    # Fit the preprocessor
    preprocessor_obj.fit(X_train)

    # Transform the data
    X_train_transformed = preprocessor_obj.transform(X_train)
    X_test_transformed = preprocessor_obj.transform(X_test)

    # Save preprocessed data
    if hasattr(X_train_transformed, "toarray"):
        train_data = np.hstack((X_train_transformed.toarray(), y_train.values.reshape(-1, 1)))
        test_data = np.hstack((X_test_transformed.toarray(), y_test.values.reshape(-1, 1)))
    else:
        train_data = np.hstack((X_train_transformed, y_train.values.reshape(-1, 1)))
        test_data = np.hstack((X_test_transformed, y_test.values.reshape(-1, 1)))

    # Save datasets and preprocessor
    np.save(train_dataset.path + "/train_data.npy", train_data)
    np.save(test_dataset.path + "/test_data.npy", test_data)
    # Shipyard: packaged with skops and a manifest of digests instead of pickle.dump.
    package_dir = Path(preprocessor.path + "/preprocessor")
    package_dir.mkdir()
    # Any column may be missing at prediction time: the imputers fill the gaps.
    flavors.save(preprocessor_obj, package_dir, signature=infer_signature(X, nullable=True))

    # Get feature names after preprocessing
    all_feature_names = []
    all_feature_names.extend(numeric_features)

    # Get one-hot encoded feature names
    if categorical_features:
        ohe = preprocessor_obj.named_transformers_["cat"].named_steps["onehot"]
        categories = ohe.categories_
        for i, category in enumerate(categories):
            cat_name = categorical_features[i]
            for cat_value in category:
                all_feature_names.append(f"{cat_name}_{cat_value}")

    return {"preprocessed_features": all_feature_names}


@component(
    packages_to_install=["xgboost", "numpy", "scikit-learn"],
    base_image="python:3.9",
)
def train_model(
    train_dataset: Input[Dataset],
    preprocessed_features: List[str],  # noqa: UP006
    model: Output[Model],
) -> Dict[str, str]:  # noqa: UP006
    import numpy as np
    import xgboost as xgb

    # Load the training data
    train_data = np.load(train_dataset.path + "/train_data.npy")

    # Split back into features and target
    X_train = train_data[:, :-1]  # All columns except the last
    y_train = train_data[:, -1]  # Last column is the target

    # Train XGBoost model
    xgb_model = xgb.XGBRegressor(
        objective="reg:squarederror",
        n_estimators=100,
        max_depth=6,
        learning_rate=0.1,
        subsample=0.8,
        colsample_bytree=0.8,
        random_state=42,
    )
    xgb_model.fit(X_train, y_train)

    # Save the model (Shipyard: XGBoost's own JSON format instead of pickle.dump)
    xgb_model.save_model(model.path + "/model.json")

    # Get feature importance
    feature_importance = xgb_model.feature_importances_
    feature_importance_dict = dict(zip(preprocessed_features, feature_importance, strict=False))

    # Get top 5 features by importance
    top_features = sorted(feature_importance_dict.items(), key=lambda x: x[1], reverse=True)[:5]
    top_features_str = ", ".join([f"{feature}: {importance:.4f}"
                                  for feature, importance in top_features])  # fmt: skip

    return {"top_features": top_features_str}


@component(
    packages_to_install=["numpy", "scikit-learn", "google-cloud-aiplatform"],
    base_image="python:3.9",
)
def evaluate_model(
    test_dataset: Input[Dataset],
    model: Input[Model],
    metrics: Output[ClassificationMetrics],
    project_id: str,
    region: str,
    model_display_name: str,
) -> Dict[str, float]:  # noqa: UP006
    import json
    import time

    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    import shipyard as sy  # Shipyard: instead of google.cloud.aiplatform

    # Load test data and model
    test_data = np.load(test_dataset.path + "/test_data.npy")
    X_test = test_data[:, :-1]
    y_test = test_data[:, -1]
    model_obj = xgb.XGBRegressor()
    model_obj.load_model(model.path + "/model.json")

    # Make predictions
    y_pred = model_obj.predict(X_test)

    # Calculate metrics
    mse = mean_squared_error(y_test, y_pred)
    rmse = np.sqrt(mse)
    mae = mean_absolute_error(y_test, y_pred)
    r2 = r2_score(y_test, y_pred)

    # Log metrics to Shipyard (was: Vertex AI Experiments, one run per evaluation)
    experiment_name = f"{model_display_name}_experiment"
    with sy.start_run(experiment=experiment_name, name=f"run_{int(time.time())}") as run:
        run.log_params({"project_id": project_id, "region": region})
        run.log_metrics({"rmse": rmse, "mae": mae, "r2": r2})

    # Save metrics for the next component
    metrics_dict = {"rmse": float(rmse), "mae": float(mae), "r2": float(r2)}
    with open(metrics.path + "/metrics.json", "w") as f:
        json.dump(metrics_dict, f)

    # Create confusion matrix data for visualization
    bins = 5
    y_binned = np.digitize(y_test, np.linspace(y_test.min(), y_test.max(), bins))
    y_pred_binned = np.digitize(y_pred, np.linspace(y_pred.min(), y_pred.max(), bins))
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_binned, y_pred_binned, labels=range(1, bins + 1))

    # Record metrics for classification visualizations
    metrics.log_confusion_matrix(["bin_" + str(i) for i in range(1, bins + 1)], cm.tolist())

    return metrics_dict


@component(
    packages_to_install=["google-cloud-aiplatform", "semantic-version"],
    base_image="python:3.9",
)
def register_model(
    model: Input[Model],
    preprocessor: Input[Model],
    metrics: Input[ClassificationMetrics],
    project_id: str,
    region: str,
    model_display_name: str,
) -> Dict[str, str]:  # noqa: UP006
    import json
    from pathlib import Path

    import xgboost as xgb
    from sklearn.pipeline import Pipeline

    import shipyard as sy
    from shipyard.registry import flavors

    # Load metrics from the evaluation step
    with open(metrics.path + "/metrics.json") as f:
        current_metrics = json.load(f)

    # Shipyard: preprocessor and model become one servable version (this replaces copying
    # the two pickles and predictor.py into a model directory).
    manifest, preprocessor_obj = flavors.load(
        Path(preprocessor.path + "/preprocessor"), flavors.LoadOptions()
    )
    model_obj = xgb.XGBRegressor()
    model_obj.load_model(model.path + "/model.json")
    servable = Pipeline([("preprocessor", preprocessor_obj), ("model", model_obj)])

    # Shipyard: the registry keeps every candidate; promote_if_better moves "production"
    # only if RMSE is lower than the current holder's, bumping the patch version
    # (1.0.0 for the first), and records the decision in the alias history.
    registered_model = sy.register_model(
        model_display_name,
        servable,
        signature=manifest.signature,
        labels={"framework": "xgboost", "project_id": project_id, "region": region},
        metrics=current_metrics,
    )
    decision = sy.promote_if_better(
        model_display_name, registered_model.version, metric="rmse", mode="min",
        alias="production", bump="patch",
    )  # fmt: skip
    if decision.incumbent_version is None:
        deployment_decision = "deployed_first_version"
    elif decision.promoted:
        deployment_decision = "deployed"
    else:
        deployment_decision = "not_deployed_existing_better"
    production = sy.get_model_version(model_display_name, alias="production")
    return {
        "deployment_decision": deployment_decision,
        "version": production.semver or "",
        "model_id": registered_model.uri,
    }


@pipeline(name="lead-scoring-pipeline", pipeline_root=PIPELINE_ROOT)
def lead_scoring_pipeline(
    project_id: str = PROJECT_ID,
    region: str = REGION,
    bq_dataset: str = BQ_DATASET,
    bq_table: str = BQ_TABLE,
    model_display_name: str = MODEL_DISPLAY_NAME,
):  # type: ignore[no-untyped-def]
    # Run the ingestion component
    ingest_task = ingest_data(project_id=project_id, dataset_id=bq_dataset, table_id=bq_table)

    # Run the preprocessing component
    preprocess_task = preprocess_data(
        input_dataset=ingest_task.outputs["output_dataset"],
        features=ingest_task.outputs["features"],
        target=ingest_task.outputs["target"],
    )

    # Run the training component
    train_task = train_model(
        train_dataset=preprocess_task.outputs["train_dataset"],
        preprocessed_features=preprocess_task.outputs["preprocessed_features"],
    )

    # Run the evaluation component
    eval_task = evaluate_model(
        test_dataset=preprocess_task.outputs["test_dataset"],
        model=train_task.outputs["model"],
        project_id=project_id,
        region=region,
        model_display_name=model_display_name,
    )

    # Run the registration component
    register_task = register_model(  # noqa: F841 - the seed names every task
        model=train_task.outputs["model"],
        preprocessor=preprocess_task.outputs["preprocessor"],
        metrics=eval_task.outputs["metrics"],
        project_id=project_id,
        region=region,
        model_display_name=model_display_name,
    )


def write_local_table(rows: int = 20_000, seed: int = 2) -> str:
    """Shipyard: stand-in for the BigQuery table, generated like the quickstart's leads."""
    from pathlib import Path

    from shipyard.quickstart.data import generate_leads

    settings = sy.init()
    table = Path(settings.home, "warehouse", PROJECT_ID, BQ_DATASET, f"{BQ_TABLE}.csv")
    table.parent.mkdir(parents=True, exist_ok=True)
    generate_leads(rows, seed).to_csv(table, index=False)
    return str(table)


def compile_and_run_pipeline():  # type: ignore[no-untyped-def]
    # Compile the pipeline (Shipyard writes a versioned YAML spec)
    sy.compile_pipeline(lead_scoring_pipeline, "lead_scoring_pipeline.yaml")

    # Initialize Shipyard (was: aiplatform.init(project=PROJECT_ID, location=REGION))
    sy.init()

    # Create and run the pipeline job (was: aiplatform.PipelineJob(...).run())
    pipeline_job = sy.run_pipeline("lead_scoring_pipeline.yaml", enable_caching=True)

    return pipeline_job


# Execute the pipeline
if __name__ == "__main__":
    write_local_table()
    job = compile_and_run_pipeline()
    print(f"Pipeline job: {job.pipeline_name} {job.state.lower()} (run {job.id})")
    print(job.tasks["register-model"].outputs["Output"])
