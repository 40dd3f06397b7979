"""A live server with XGBoost models deployed, shared by the data-plane tests of a module.

Starting a server and loading a model into a replica costs seconds, so each module that
imports ``xgb_served`` gets one server (SQLite; the data plane reads no database per
request, and the control plane's backends are covered by test_replicas). Endpoint ``xgb``
in project ``p`` serves model ``xgb`` versions 1 and 2 (the second predicts twice the
first) with a 100/0 split; ``linear`` serves the linear model of conftest on its own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import shipyard
from shipyard.config import Settings
from shipyard.sdk import session
from tests.server.live import LiveServer, live_server
from tests.serving.conftest import frame, linear

P = "/api/v1/projects/p"
FEATURES = [f"f{i}" for i in range(10)]


@dataclass
class Served:
    server: LiveServer
    http: httpx.Client
    model: xgb.XGBRegressor
    doubled: xgb.XGBRegressor


def xgb_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def train(scale: float) -> xgb.XGBRegressor:
    data = xgb_frame(500)
    target = scale * (data["f0"] * 2 - data["f1"] + data["f2"] * data["f3"])
    model = xgb.XGBRegressor(n_estimators=20, max_depth=4, n_jobs=1)
    model.fit(data, target)
    return model


@pytest.fixture(scope="module")
def xgb_served() -> Iterator[Served]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("SHIPYARD_")}
    for key in saved:
        if key != "SHIPYARD_TEST_POSTGRES":
            del os.environ[key]
    with tempfile.TemporaryDirectory(prefix="shipyard-dataplane-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(home=root / "home", uri=f"sqlite:///{root / 'db'}",
                                    artifacts=str(root / "blobs"), project="p")
        model, doubled = train(1.0), train(2.0)
        shipyard.init(home=settings.home, uri=settings.uri, artifacts=settings.artifacts,
                      project="p")
        try:
            for m in (model, doubled):
                shipyard.register_model("xgb", m, input_example=xgb_frame(5))
            shipyard.register_model("linear", linear(1.0), input_example=frame(5))
        finally:
            session.reset()
        with live_server(settings, worker=False) as server, httpx.Client(
                base_url=server.url, timeout=120,
                headers={"Authorization": f"Bearer {server.token}"}) as http:
            for name, model_name in (("xgb", "xgb"), ("linear", "linear")):
                assert http.post(f"{P}/endpoints", json={"name": name}).status_code == 200
                deployed = http.post(f"{P}/endpoints/{name}/deployments",
                                     json={"model": model_name, "version": 1})
                assert deployed.status_code == 200, deployed.text
            second = http.post(f"{P}/endpoints/xgb/deployments",
                               json={"model": "xgb", "version": 2, "traffic_percentage": 0})
            assert second.status_code == 200, second.text
            yield Served(server, http, model, doubled)
    os.environ.update(saved)
