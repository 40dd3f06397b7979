"""Explanations through the public SDK, in local mode (computed in the caller's process)
and through a real server (its replica's :explain): the same attributions and errors."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from shipyard.errors import InvalidArgument


def test_explain_in_both_modes(sy: ModuleType) -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"visits": rng.integers(0, 50, 200).astype("int64"),
                      "time_on_site": rng.normal(120.0, 30.0, 200)})
    model = LinearRegression().fit(x, 0.5 * x["visits"] - 0.01 * x["time_on_site"] + 3)
    sy.register_model("lead", model, input_example=x.head(5))
    ep = sy.create_endpoint("lead-ep")
    ep.deploy("lead", version=1)
    instance = {"visits": 30, "time_on_site": 200.0}
    # The baseline is the input example's typical row: the median of each column.
    base = {"visits": round(x.head(5)["visits"].median()),
            "time_on_site": x.head(5)["time_on_site"].median()}

    for method in (None, "sampled_shapley"):
        answer = ep.explain([instance], method=method, path_count=5)
        assert answer.deployed_model_id == "lead:1" and answer.model_version == 1
        (attribution,) = answer.attributions
        # A linear model's attributions are exact: coefficient * (instance - baseline).
        assert attribution["featureAttributions"]["visits"] == pytest.approx(
            model.coef_[0] * (30 - base["visits"]), abs=1e-6)
        assert attribution["featureAttributions"]["time_on_site"] == pytest.approx(
            model.coef_[1] * (200.0 - base["time_on_site"]), abs=1e-6)
        assert attribution["instanceOutputValue"] == pytest.approx(
            answer.predictions[0], abs=1e-9)
        assert attribution["approximationError"] == pytest.approx(0.0, abs=1e-9)

    for kwargs, field in (({"path_count": 0}, "path_count"),
                          ({"path_count": 51}, "path_count"),
                          ({"method": "integrated_gradients"}, "method")):
        with pytest.raises(InvalidArgument) as bad:
            ep.explain([instance], **kwargs)
        assert bad.value.field == field
    with pytest.raises(InvalidArgument) as value:
        ep.explain([{"visits": "many", "time_on_site": 1.0}])
    assert value.value.field == "visits"
