"""The fast predict path: XGBoost trees compiled to NumPy answer exactly as XGBoost does,
plainly numeric instances skip pandas, and everything else still gets the general path's
answers and errors; the auth decision cache still honours a revocation at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from shipyard.serving.compiled import COMPILED_MAX_ROWS, FastInput, compile_xgboost
from tests.server.conftest import assert_problem, make_user
from tests.serving.served import FEATURES, P, Served, train, xgb_frame, xgb_served

__all__ = ["xgb_served"]

SIGNATURE = {"columns": [{"name": "a", "kind": "integer"}, {"name": "b", "kind": "float"}]}


def test_compiled_trees_answer_bit_for_bit_as_xgboost() -> None:
    model = train(1.0)
    compiled = compile_xgboost(model, FEATURES)
    assert compiled is not None
    rows = xgb_frame(300, seed=7).to_numpy().copy()
    rows[::7, 3] = np.nan  # missing values take each split's default direction
    expected = model.get_booster().inplace_predict(rows.astype(np.float32))
    for batch in (rows[:1], rows[:COMPILED_MAX_ROWS], rows):
        got = compiled.predict(batch)
        assert got.dtype == np.float32
        assert np.array_equal(got, expected[:len(batch)])


def test_models_the_compiler_cannot_reproduce_are_declined() -> None:
    data = xgb_frame(200)
    labels = (data["f0"] > 0).astype(int)
    classifier = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(data, labels)
    assert compile_xgboost(classifier, FEATURES) is None  # it answers labels
    poisson = xgb.XGBRegressor(n_estimators=5, objective="count:poisson", n_jobs=1)
    poisson.fit(data, labels)
    assert compile_xgboost(poisson, FEATURES) is None  # its link is exp, not the identity
    assert compile_xgboost(train(1.0), FEATURES[:5]) is None  # another feature count


def test_fast_input_takes_plain_numbers_and_declines_everything_else() -> None:
    fast = FastInput.from_signature(SIGNATURE)
    assert fast is not None
    got = fast.matrix([[1, 2.5], [3, -1.0]])
    assert got is not None and got.tolist() == [[1.0, 2.5], [3.0, -1.0]]
    by_name = fast.matrix([{"b": 2.5, "a": 1}])
    assert by_name is not None and by_name.tolist() == [[1.0, 2.5]]
    for declined in ([[True, 2.5]], [["1", 2.5]], [[1, None]], [[1.5, 2.5]], [[1, 2.5, 3]],
                     [{"a": 1}], [{"a": 1, "b": 2.0, "c": 3}], [[1, 2.5], {"a": 1, "b": 2}],
                     [], "rows", [[[1], 2.5]]):
        assert fast.matrix(declined) is None, declined
    string_column = {"columns": [{"name": "a", "kind": "string"}]}
    assert FastInput.from_signature(string_column) is None
    assert FastInput.from_signature(None) is None


def test_predictions_through_the_server_are_xgboost_s(xgb_served: Served) -> None:
    http = xgb_served.http
    rows = xgb_frame(40, seed=3)
    expected = xgb_served.model.predict(rows)
    arrays = http.post(f"{P}/endpoints/xgb:predict",
                       json={"instances": rows.to_numpy().tolist()})
    assert arrays.status_code == 200, arrays.text
    body = arrays.json()
    assert body["deployedModelId"] == "xgb:1" and body["modelVersionId"] == "1"
    assert np.array_equal(np.asarray(body["predictions"], np.float32), expected)
    assert arrays.headers["x-model-version"] == "1"
    records = http.post(f"{P}/endpoints/xgb:predict",
                        json={"instances": rows.head(3).to_dict(orient="records")})
    assert np.array_equal(np.asarray(records.json()["predictions"], np.float32), expected[:3])
    # Integers where floats are expected are numbers too (the general path agrees).
    ints = http.post(f"{P}/endpoints/xgb:predict", json={"instances": [[1] * 10]})
    one = xgb_served.model.predict(pd.DataFrame([[1.0] * 10], columns=FEATURES))
    assert np.array_equal(np.asarray(ints.json()["predictions"], np.float32), one)


@pytest.mark.parametrize(("row", "field"), [
    ([True, *[0.0] * 9], "f0"),
    ([0.0, "x", *[0.0] * 8], "f1"),
    ([0.0, 0.0, None, *[0.0] * 7], "f2"),
])
def test_what_the_fast_path_declines_is_a_400_naming_the_field(
        xgb_served: Served, row: list[object], field: str) -> None:
    answer = xgb_served.http.post(f"{P}/endpoints/xgb:predict", json={"instances": [row]})
    assert_problem(answer, 400, field)
    assert "row 0" in answer.json()["detail"]


def test_a_revoked_token_cannot_predict_on_the_next_request(xgb_served: Served) -> None:
    admin = xgb_served.http
    token = make_user(admin, "predictor", project="p", role="user")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{P}/endpoints/xgb:predict"
    body = {"instances": [[0.0] * 10]}
    for _ in range(3):  # cached by now
        assert admin.post(url, json=body, headers=headers).status_code == 200
    assert admin.delete(f"/api/v1/tokens/{token[3:15]}").status_code == 200
    assert_problem(admin.post(url, json=body, headers=headers), 401)
    # A viewer may not predict, and the denial is answered the same way every time.
    viewer = {"Authorization": f"Bearer {make_user(admin, 'watcher', project='p', role='viewer')}"}
    for _ in range(2):
        assert_problem(admin.post(url, json=body, headers=viewer), 403)


def test_the_server_process_freezes_its_heap_once_started() -> None:
    # The data plane's layer sees the app's lifespan: once startup completes in a process
    # that is the server (serving_settle_heap, set by `shipyard server`), what is alive is
    # frozen out of the collector's walks and the switch interval is 1 ms; elsewhere
    # (tests, embedding apps) nothing changes.
    import asyncio
    import gc
    import sys
    from types import SimpleNamespace
    from typing import Any

    from shipyard.server.api.dataplane import DataPlane

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})

    def start(extra: dict[str, str]) -> list[str]:
        sent: list[str] = []

        async def receive() -> dict[str, str]:
            return {"type": "lifespan.startup"}

        async def send(message: dict[str, str]) -> None:
            sent.append(message["type"])

        state = SimpleNamespace(shipyard=SimpleNamespace(settings=SimpleNamespace(
            extra=extra)))
        asyncio.run(DataPlane(app)({"type": "lifespan", "app": SimpleNamespace(state=state)},
                                   receive, send))
        return sent

    interval = sys.getswitchinterval()
    gc.unfreeze()
    try:
        assert start({}) == ["lifespan.startup.complete"]
        assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == interval
        assert start({"serving_settle_heap": "1"}) == ["lifespan.startup.complete"]
        assert gc.get_freeze_count() > 0 and sys.getswitchinterval() == 0.001
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
