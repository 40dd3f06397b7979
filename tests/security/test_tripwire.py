"""The pickle tripwire: while armed, no unpickler in this process can run a payload.

Every test builds a payload that would create ``canary`` when unpickled and asserts the
canary never appears (DESIGN.md 6: the server process never unpickles).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from pickle import loads as loads_bound_before_arming
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from shipyard.security.tripwire import UnsafeDeserialization, deserialization_tripwire


class _Payload:
    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        # What a malicious model file does: call something with side effects on load.
        return (os.mkdir, (self.canary,))


class _ThirdPartyUnpickler(pickle.Unpickler):
    """Stands for an Unpickler subclass defined in some library before arming."""


def _via_pickle_loads(data: bytes, path: Path) -> object:
    return pickle.loads(data)


def _via_pickle_load(data: bytes, path: Path) -> object:
    return pickle.load(io.BytesIO(data))


def _via_unpickler(data: bytes, path: Path) -> object:
    return pickle.Unpickler(io.BytesIO(data)).load()


def _via_pure_python(data: bytes, path: Path) -> object:
    return pickle._loads(data)  # type: ignore[attr-defined]


def _via_bound_before_arming(data: bytes, path: Path) -> object:
    return loads_bound_before_arming(data)


def _via_subclass(data: bytes, path: Path) -> object:
    return _ThirdPartyUnpickler(io.BytesIO(data)).load()


def _via_pandas(data: bytes, path: Path) -> object:
    path.write_bytes(data)
    return pd.read_pickle(path)


def _via_joblib(data: bytes, path: Path) -> object:
    path.write_bytes(data)
    return joblib.load(path)


LOADERS = {
    "pickle.loads": _via_pickle_loads,
    "pickle.load": _via_pickle_load,
    "pickle.Unpickler": _via_unpickler,
    "pickle._loads": _via_pure_python,
    "loads bound before arming": _via_bound_before_arming,
    "Unpickler subclass": _via_subclass,
    "pandas.read_pickle": _via_pandas,
    "joblib.load": _via_joblib,
}


@pytest.mark.parametrize("loader", list(LOADERS.values()), ids=list(LOADERS))
def test_cve_2024_37052_pickled_model_never_runs_code(
    loader: Callable[[bytes, Path], object], tmp_path: Path
) -> None:
    # MLflow loaded scikit-learn models with pickle, so a model file ran code on load
    # (CVE-2024-37052 and its siblings); here every route to an unpickler is cut.
    canary = tmp_path / "canary"
    data = pickle.dumps(_Payload(canary))
    with deserialization_tripwire() as wire:
        with pytest.raises(UnsafeDeserialization):
            loader(data, tmp_path / "model.pkl")
    assert not canary.exists()
    with pytest.raises(UnsafeDeserialization, match="unpickling was attempted"):
        wire.assert_untripped()


def test_numpy_object_arrays_cannot_run_code(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "array.npy"
    array = np.empty(1, dtype=object)
    array[0] = _Payload(canary)
    np.save(path, array, allow_pickle=True)
    with deserialization_tripwire() as wire, pytest.raises(UnsafeDeserialization):
        np.load(path, allow_pickle=True)
    assert not canary.exists()
    assert wire.trips


def test_a_swallowed_trip_is_still_recorded(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    data = pickle.dumps(_Payload(canary))
    with deserialization_tripwire() as wire:
        try:
            pickle.loads(data)
        except Exception:  # code under test that hides errors must not hide the trip
            pass
    assert not canary.exists()
    with pytest.raises(UnsafeDeserialization):
        wire.assert_untripped()


def test_disarming_restores_pickle_and_nesting_shares_one_patch() -> None:
    original = pickle.loads
    with deserialization_tripwire() as outer:
        with deserialization_tripwire() as inner:
            assert pickle.loads is not original
        assert pickle.loads is not original  # still armed by the outer block
        outer.assert_untripped()
        inner.assert_untripped()
    assert pickle.loads is original
    assert pickle.loads(pickle.dumps({"plain": [1, 2]})) == {"plain": [1, 2]}
