"""The wire protocols on the server's port (DESIGN.md 4), each with its real client where
one exists: KServe V1, the Open Inference Protocol through tritonclient's HTTP client
(one 2-D tensor, one tensor per feature, binary and JSON tensors, a pinned version),
MLflow's scoring shapes and Vertex rawPredict. Answers name the model version that
answered; project-less paths check the role on the endpoint's project."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from shipyard.serving import protocols
from shipyard.serving.models import Prediction
from tests.server.conftest import assert_problem, make_user
from tests.serving.served import FEATURES, P, Served, xgb_frame, xgb_served

__all__ = ["xgb_served"]


def expected(served: Served, rows: pd.DataFrame, doubled: bool = False) -> np.ndarray:
    model = served.doubled if doubled else served.model
    return np.asarray(model.predict(rows), np.float32)


def as32(values: object) -> np.ndarray:
    return np.asarray(values, np.float32).ravel()


def test_kserve_v1(xgb_served: Served) -> None:
    http = xgb_served.http
    rows = xgb_frame(4, seed=11)
    arrays = http.post("/v1/models/xgb:predict", json={"instances": rows.to_numpy().tolist()})
    assert arrays.status_code == 200, arrays.text
    body = arrays.json()
    assert np.array_equal(as32(body["predictions"]), expected(xgb_served, rows))
    assert body["model_name"] == "xgb" and body["model_version"] == "1"
    objects = http.post("/v1/models/xgb:predict",
                        json={"instances": rows.to_dict(orient="records")})
    assert np.array_equal(as32(objects.json()["predictions"]), expected(xgb_served, rows))
    assert_problem(http.post("/v1/models/nope:predict", json={"instances": [[1.0] * 10]}),
                   404, "name")
    assert_problem(http.post("/v1/models/xgb:predict", json={"instances": [[1.0] * 9]}),
                   400, "instances[0]")


@pytest.fixture
def client(xgb_served: Served) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=xgb_served.server.url.removeprefix("http://"))


def auth(served: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.server.token}"}


def test_oip_health_and_metadata_with_tritonclient(xgb_served: Served,
                                                   client: triton.InferenceServerClient
                                                   ) -> None:
    headers = auth(xgb_served)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata(headers=headers)["name"] == "shipyard"
    assert client.is_model_ready("xgb", headers=headers)
    assert client.is_model_ready("xgb", model_version="2", headers=headers)
    assert not client.is_model_ready("nope", headers=headers)
    metadata = client.get_model_metadata("xgb", headers=headers)
    assert metadata["versions"] == ["1", "2"]
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    assert {i["datatype"] for i in metadata["inputs"]} == {"FP64"}
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("xgb")  # no credential


@pytest.mark.parametrize("binary", [True, False])
def test_oip_infer_one_2d_tensor(xgb_served: Served, client: triton.InferenceServerClient,
                                 binary: bool) -> None:
    rows = xgb_frame(5, seed=12)
    tensor = triton.InferInput("x", [5, 10], "FP32")
    tensor.set_data_from_numpy(rows.to_numpy(np.float32), binary_data=binary)
    wanted = triton.InferRequestedOutput("predict", binary_data=binary)
    result = client.infer("xgb", [tensor], outputs=[wanted], headers=auth(xgb_served),
                          request_id="r-1")
    response = result.get_response()
    assert response["model_name"] == "xgb" and response["model_version"] == "1"
    assert response["id"] == "r-1"
    got = result.as_numpy("predict")
    assert got is not None and got.shape == (5,)
    # Asked for binary output, it comes as 5 little-endian float64s after the JSON header;
    # else as JSON data.
    output = result.get_output("predict")
    assert output is not None and output["datatype"] == "FP64"
    if binary:
        assert output["parameters"] == {"binary_data_size": 5 * 8} and "data" not in output
    else:
        assert len(output["data"]) == 5 and "parameters" not in output
    # The FP32 rows are what the model sees (XGBoost works in float32 anyway).
    assert np.array_equal(got.astype(np.float32),
                          expected(xgb_served, pd.DataFrame(rows.to_numpy(np.float32),
                                                            columns=FEATURES)))


def test_oip_infer_one_tensor_per_feature_and_a_pinned_version(
        xgb_served: Served, client: triton.InferenceServerClient) -> None:
    rows = xgb_frame(3, seed=13)
    tensors = []
    for name in reversed(FEATURES):  # named tensors may come in any order
        tensor = triton.InferInput(name, [3], "FP64")
        tensor.set_data_from_numpy(rows[name].to_numpy(), binary_data=False)
        tensors.append(tensor)
    # No outputs named: tritonclient asks for all of them in binary (binary_data_output).
    result = client.infer("xgb", tensors, headers=auth(xgb_served))
    assert result.get_output("predict")["parameters"] == {"binary_data_size": 3 * 8}
    assert np.array_equal(result.as_numpy("predict").astype(np.float32),
                          expected(xgb_served, rows))
    # Version 2 takes no traffic; pinned, it answers (twice version 1's target).
    pinned = client.infer("xgb", tensors, model_version="2", headers=auth(xgb_served))
    assert pinned.get_response()["model_version"] == "2"
    assert np.array_equal(pinned.as_numpy("predict").astype(np.float32),
                          expected(xgb_served, rows, doubled=True))
    with pytest.raises(InferenceServerException, match="serves no version"):
        client.infer("xgb", tensors, model_version="7", headers=auth(xgb_served))


def test_oip_binary_outputs_decode_with_tritonclient() -> None:
    # Every datatype an answer has, encoded as Triton does, read back by tritonclient's own
    # response parser (InferResult over the body and its header length).
    def binary(predictions: list[object]) -> triton.InferResult:
        answer = protocols.oip_answer(Prediction(
            predictions=predictions, deployed_model_id="m:1", model="m", model_version=1),
            "m", {"output": "out", "id": "r"})
        header, data = protocols.oip_binary(answer)
        return triton.InferResult.from_response_body(header + data, header_length=len(header))

    cases: list[tuple[list[object], str, object]] = [
        ([0.5, -2.25, 1e300], "FP64", np.array([0.5, -2.25, 1e300])),
        ([3, -7, 2**40], "INT64", np.array([3, -7, 2**40], dtype=np.int64)),
        ([True, False, True], "BOOL", np.array([True, False, True])),
        (["yes", "", "ünï"], "BYTES", np.array([b"yes", b"", "ünï".encode()], dtype=object)),
        ([[1.0, 2.0], [3.0, 4.0]], "FP64", np.array([[1.0, 2.0], [3.0, 4.0]])),
    ]
    for predictions, datatype, wanted in cases:
        result = binary(predictions)
        output = result.get_output("out")
        assert output is not None and output["datatype"] == datatype and "data" not in output
        got = result.as_numpy("out")
        assert got is not None and got.dtype == np.asarray(wanted).dtype
        assert np.array_equal(got, np.asarray(wanted)), (datatype, got)
        assert result.get_response()["id"] == "r"
    # A missing value has no binary form in a numeric tensor: that output stays JSON.
    kept = binary([1.5, None]).get_output("out")
    assert kept is not None and kept["data"] == [1.5, None] and "parameters" not in kept


def test_oip_binary_parameters_are_checked(xgb_served: Served) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64",
                        "data": [0.0] * 10}]}
    http = xgb_served.http
    assert_problem(http.post("/v2/models/xgb/infer",
                             json={**body, "parameters": {"binary_data_output": "yes"}}),
                   400, "parameters.binary_data_output")
    assert_problem(http.post("/v2/models/xgb/infer", json={
        **body, "outputs": [{"name": "predict", "parameters": {"binary_data": 1}}]}),
        400, "outputs[0].parameters.binary_data")
    # JSON unless asked: the output's own false wins over the request's true.
    answer = http.post("/v2/models/xgb/infer", json={
        **body, "parameters": {"binary_data_output": True},
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}]})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert len(answer.json()["outputs"][0]["data"]) == 1
    raw = http.post("/v2/models/xgb/infer", json={**body,
                                                  "parameters": {"binary_data_output": True}})
    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"] == "application/octet-stream"
    size = int(raw.headers["inference-header-content-length"])
    assert len(raw.content) == size + 8
    assert raw.headers["x-model-version"] == "1"


def test_oip_bad_tensors_are_400_naming_the_field(xgb_served: Served) -> None:
    http = xgb_served.http
    url = "/v2/models/xgb/infer"

    def tensor(name: str, shape: list[int], data: list[float]) -> dict[str, object]:
        return {"name": name, "shape": shape, "datatype": "FP64", "data": data}

    cases = [
        ({"inputs": [tensor("x", [1, 9], [0.0] * 9)]}, "inputs[0].shape"),
        ({"inputs": [tensor("x", [2, 10], [0.0] * 10)]}, "inputs[0].data"),
        ({"inputs": [tensor(n, [1], [0.0]) for n in FEATURES[:9]]}, "inputs.f9"),
        ({"inputs": [tensor(n, [1], [0.0]) for n in [*FEATURES, "zz"]]}, "inputs.zz"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [tensor("x", [1, 10], [0.0] * 10)], "bogus": 1}, "bogus"),
    ]
    for body, field in cases:
        assert_problem(http.post(url, json=body), 400, field)


def test_mlflow_scoring_shapes(xgb_served: Served) -> None:
    http = xgb_served.http
    rows = xgb_frame(3, seed=14)
    want = expected(xgb_served, rows)
    shuffled = list(reversed(FEATURES))
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": rows.to_numpy().tolist()}},
        {"dataframe_split": {"columns": shuffled, "data": rows[shuffled].to_numpy().tolist()}},
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_numpy().tolist()},
        {"inputs": rows.to_numpy().tolist()},
        {"inputs": {name: rows[name].tolist() for name in FEATURES}},
    ]
    for body in bodies:
        answer = http.post("/endpoints/xgb/invocations", json=body)
        assert answer.status_code == 200, (body, answer.text)
        assert list(answer.json()) == ["predictions"]
        assert np.array_equal(as32(answer.json()["predictions"]), want), body
        assert answer.headers["x-model-version"] == "1"
        assert answer.headers["x-deployed-model-id"] == "xgb:1"
    assert_problem(http.post("/endpoints/xgb/invocations", json={"rows": []}), 400, "body")
    assert_problem(http.post("/endpoints/xgb/invocations",
                             json={"dataframe_split": {"columns": FEATURES, "data": [[1.0]]}}),
                   400, "dataframe_split.data[0]")


def test_vertex_raw_predict(xgb_served: Served) -> None:
    http = xgb_served.http
    rows = xgb_frame(2, seed=15)
    for url in (f"{P}/endpoints/xgb:rawPredict",
                "/v1/projects/p/locations/us-central1/endpoints/xgb:rawPredict"):
        answer = http.post(url, json={"instances": rows.to_numpy().tolist()})
        assert answer.status_code == 200, answer.text
        assert np.array_equal(as32(answer.json()["predictions"]), expected(xgb_served, rows))
        assert answer.headers["x-model-version"] == "1"


def test_project_less_paths_check_the_role_on_the_endpoint_s_project(
        xgb_served: Served) -> None:
    admin = xgb_served.http
    elsewhere = make_user(admin, "elsewhere", project="other", role="manager")
    here = make_user(admin, "here", project="p", role="user")
    viewer = make_user(admin, "looker", project="p", role="viewer")
    row = {"instances": [[0.0] * 10]}
    calls = [("/v1/models/xgb:predict", row),
             ("/v2/models/xgb/infer",
              {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64",
                           "data": [0.0] * 10}]}),
             ("/endpoints/xgb/invocations", row)]
    for url, body in calls:
        assert_problem(admin.post(url, json=body, headers={"Authorization": ""}), 401)
        for token, status in ((elsewhere, 403), (viewer, 403), (here, 200)):
            answer = admin.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == status, (url, token[:15], answer.text)
    looked = admin.get("/v2/models/xgb", headers={"Authorization": f"Bearer {viewer}"})
    assert looked.status_code == 200
    assert_problem(admin.get("/v2/models/xgb",
                             headers={"Authorization": f"Bearer {elsewhere}"}), 403)
