"""Seed 002's section 9 (using the deployed model) runs as written with ``from shipyard
import aiplatform`` in place of ``from google.cloud import aiplatform``, and its Terraform's
model filter finds the production model. Local mode and through a real server (its
replica processes answer predict and :explain)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.errors import InvalidArgument

PROJECT_ID = "sofos-mlops"
REGION = "europe-west4"
NUMERIC = ["company_size", "pages_visited", "time_on_site", "prior_contacts"]
CATEGORICAL = ["industry", "product_interest", "campaign_source"]


# -- seed 002, section 9, as written (only the import swapped) -------------------------------

def get_prediction(instances, endpoint_name="lead-scoring-endpoint"):  # type: ignore[no-untyped-def]
    """Get predictions from the deployed model."""
    from shipyard import aiplatform

    # Initialize Vertex AI
    aiplatform.init(project=PROJECT_ID, location=REGION)

    # Get endpoint
    endpoint = aiplatform.Endpoint.list(
        filter=f'display_name="{endpoint_name}"'
    )[0]

    # Get predictions
    predictions = endpoint.predict(instances=instances)

    return predictions


def get_explanation(instances, endpoint_name="lead-scoring-endpoint"):  # type: ignore[no-untyped-def]
    """Get explanations from the deployed model."""
    from shipyard import aiplatform

    # Initialize Vertex AI
    aiplatform.init(project=PROJECT_ID, location=REGION)

    # Get endpoint
    endpoint = aiplatform.Endpoint.list(
        filter=f'display_name="{endpoint_name}"'
    )[0]

    # Get explanations
    explanation = endpoint.explain(instances=instances)

    return explanation


def seed_example() -> None:
    # Example: Get prediction for a new lead
    new_lead = [
        {
            "company_size": 152,
            "industry": "technology",
            "product_interest": "enterprise",
            "pages_visited": 15,
            "time_on_site": 320,
            "campaign_source": "google",
            "prior_contacts": 2
        }
    ]

    # Get prediction
    prediction = get_prediction(new_lead)
    print(f"Lead score: {prediction.predictions[0][0]:.2f}")

    # Get explanation
    explanation = get_explanation(new_lead)
    print("Feature importance:")
    for attribution in explanation.explanations[0].attributions[0].feature_attributions.items():
        print(f"  {attribution[0]}: {attribution[1]:.4f}")


# -- the deployment the seed's Terraform makes -----------------------------------------------

NEW_LEAD = {"company_size": 152, "industry": "technology", "product_interest": "enterprise",
            "pages_visited": 15, "time_on_site": 320, "campaign_source": "google",
            "prior_contacts": 2}


def leads(rows: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(2)
    x = pd.DataFrame({
        "company_size": rng.integers(5, 2000, rows).astype("int64"),
        "industry": rng.choice(["technology", "retail", "finance", "health"], rows),
        "product_interest": rng.choice(["enterprise", "starter", "pro"], rows),
        "pages_visited": rng.integers(1, 40, rows).astype("int64"),
        "time_on_site": rng.integers(10, 900, rows).astype("int64"),
        "campaign_source": rng.choice(["google", "linkedin", "email"], rows),
        "prior_contacts": rng.integers(0, 6, rows).astype("int64"),
    })
    y = (0.02 * x["pages_visited"] + 0.0004 * x["time_on_site"]
         + 0.2 * (x["product_interest"] == "enterprise") + 0.05 * x["prior_contacts"])
    return x, y.clip(0, 1)


def seed_model(x: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Section 2's preprocessor and section 3's XGBoost regressor."""
    prep = ColumnTransformer([
        ("num", Pipeline([("imputer", SimpleImputer(strategy="median")),
                          ("scaler", StandardScaler())]), NUMERIC),
        ("cat", Pipeline([("imputer", SimpleImputer(strategy="constant", fill_value="missing")),
                          ("onehot", OneHotEncoder(handle_unknown="ignore"))]), CATEGORICAL),
    ])
    model = xgboost.XGBRegressor(objective="reg:squarederror", n_estimators=30, max_depth=4,
                                 n_jobs=1)
    return Pipeline([("preprocessor", prep), ("model", model)]).fit(x, y)


def deploy_like_terraform(sy: ModuleType) -> Pipeline:
    from shipyard import aiplatform

    aiplatform.init(project=PROJECT_ID, location=REGION)
    x, y = leads(300)
    fitted = seed_model(x, y)
    sy.register_model("lead-scoring", seed_model(x, y * 0.5), input_example=x.head(50))
    sy.register_model("lead-scoring", fitted, input_example=x.head(50),
                      labels={"deployed": "production"})
    # data "google_vertex_ai_models": labels.deployed="production" AND display_name=...
    found = aiplatform.Model.list(
        filter='labels.deployed="production" AND display_name="lead-scoring"')
    assert [(m.display_name, m.version_id) for m in found] == [("lead-scoring", "2")]
    assert found[0].resource_name == (
        f"projects/{PROJECT_ID}/locations/{REGION}/models/lead-scoring@2")
    assert [m.version_id for m in aiplatform.Model.list(filter='display_name="lead-scoring"')
            ] == ["2", "1"]
    assert aiplatform.Model.list(filter='labels.deployed="staging"') == []
    assert aiplatform.Model.list(filter='display_name="no-such-model"') == []

    endpoint = sy.create_endpoint("lead-scoring-endpoint")
    endpoint.deploy("lead-scoring", version=int(found[0].version_id), min_replicas=1,
                    max_replicas=2)
    sy.create_endpoint("other-endpoint")
    return fitted


def test_seed_prediction_runs_unchanged(sy: ModuleType) -> None:
    fitted = deploy_like_terraform(sy)
    expected = float(fitted.predict(pd.DataFrame([NEW_LEAD]))[0])

    prediction = get_prediction([NEW_LEAD])
    assert prediction.predictions[0] == pytest.approx(expected, abs=1e-6)
    assert prediction.predictions[0][0] == pytest.approx(expected, abs=1e-6)  # seed's [0][0]
    assert f"{prediction.predictions[0][0]:.2f}" == f"{expected:.2f}"
    assert prediction.deployed_model_id == "lead-scoring:2"
    assert prediction.model_version_id == "2"

    from shipyard import aiplatform

    assert sy.get_endpoint("lead-scoring-endpoint").project == PROJECT_ID
    (endpoint,) = aiplatform.Endpoint.list(filter='display_name="lead-scoring-endpoint"')
    assert endpoint.display_name == "lead-scoring-endpoint"
    assert endpoint.resource_name == (
        f"projects/{PROJECT_ID}/locations/{REGION}/endpoints/lead-scoring-endpoint")
    assert endpoint.traffic_split == {"lead-scoring:2": 100}
    same = aiplatform.Endpoint(endpoint.resource_name)
    assert same.predict(instances=[NEW_LEAD]).predictions[0] == pytest.approx(expected, 1e-6)
    assert len(aiplatform.Endpoint.list()) == 2
    assert aiplatform.Endpoint.list(filter='display_name="nothing"') == []
    with pytest.raises(InvalidArgument) as bad:
        aiplatform.Endpoint.list(filter='display_name>"a"')
    assert bad.value.field == "filter"
    with pytest.raises(InvalidArgument) as unknown:
        aiplatform.Model.list(filter='create_time="2024"')
    assert unknown.value.field == "filter"


def test_seed_section_9_with_explanations(
        sy: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    fitted = deploy_like_terraform(sy)
    seed_example()
    printed = capsys.readouterr().out.splitlines()
    expected = float(fitted.predict(pd.DataFrame([NEW_LEAD]))[0])
    assert printed[0] == f"Lead score: {expected:.2f}"
    assert printed[1] == "Feature importance:"
    names = [line.split(":")[0].strip() for line in printed[2:]]
    assert sorted(names) == sorted(NEW_LEAD)

    explanation = get_explanation([NEW_LEAD])
    (attribution,) = explanation.explanations[0].attributions
    total = attribution.baseline_output_value + sum(attribution.feature_attributions.values())
    assert total == pytest.approx(attribution.instance_output_value, abs=1e-5)
    assert attribution.instance_output_value == pytest.approx(expected, abs=1e-6)
    assert attribution.feature_attributions["product_interest"] > 0  # enterprise raises it
    assert explanation.predictions[0] == pytest.approx(expected, abs=1e-6)

