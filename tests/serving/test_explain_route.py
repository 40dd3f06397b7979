"""Vertex :explain through the server: the replica explains with serving.explain (TreeSHAP
for the XGBoost model, sampled Shapley on request) and the attributions plus the baseline
add up to the prediction; the answer names the version that gave both."""

from __future__ import annotations

import numpy as np

from tests.server.conftest import assert_problem
from tests.serving.served import FEATURES, P, Served, xgb_frame, xgb_served

__all__ = ["xgb_served"]


def check(answer_body: dict[str, object], rows: int, tolerance: float) -> None:
    explanations = answer_body["explanations"]
    assert isinstance(explanations, list) and len(explanations) == rows
    predictions = answer_body["predictions"]
    assert isinstance(predictions, list)
    for item, prediction in zip(explanations, predictions, strict=True):
        (attribution,) = item["attributions"]
        assert sorted(attribution["featureAttributions"]) == sorted(FEATURES)
        total = attribution["baselineOutputValue"] + sum(
            attribution["featureAttributions"].values())
        assert abs(total - attribution["instanceOutputValue"]) <= tolerance
        assert abs(attribution["instanceOutputValue"] - prediction) <= 1e-4
        assert attribution["outputIndex"] == [0]


def test_explain_adds_up_and_names_the_version(xgb_served: Served) -> None:
    http = xgb_served.http
    rows = xgb_frame(3, seed=21)
    answer = http.post(f"{P}/endpoints/xgb:explain",
                       json={"instances": rows.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["deployedModelId"] == "xgb:1" and body["modelVersionId"] == "1"
    assert np.allclose(body["predictions"], xgb_served.model.predict(rows), atol=1e-5)
    check(body, 3, 1e-4)
    sampled = http.post("/v1/projects/p/locations/europe-west4/endpoints/xgb:explain", json={
        "instances": rows.to_numpy().tolist()[:1],
        "explanationSpecOverride": {"parameters": {
            "sampledShapleyAttribution": {"pathCount": 5}}}})
    assert sampled.status_code == 200, sampled.text
    check(sampled.json(), 1, 1e-4)  # sampled Shapley adds up along every path


def test_explain_bad_input_is_a_400_naming_the_field(xgb_served: Served) -> None:
    http = xgb_served.http
    url = f"{P}/endpoints/xgb:explain"
    assert_problem(http.post(url, json={"instances": [[0.0] * 10], "explanationSpecOverride": {
        "parameters": {"integratedGradients": {}}}}), 400,
        "explanationSpecOverride.parameters.integratedGradients")
    assert_problem(http.post(url, json={"instances": [[0.0] * 9]}), 400, "instances[0]")
    assert_problem(http.post(url, json={"instances": [[0.0] * 10], "explanationSpecOverride": {
        "parameters": {"sampledShapleyAttribution": {"pathCount": 0}}}}), 400, "path_count")
