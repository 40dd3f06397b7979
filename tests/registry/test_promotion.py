"""promote_if_better: win, lose, first, min_delta, semver bumps, dataset variant, races."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.registry import (
    alias_history,
    get_model_version,
    promote_if_better,
    promote_if_better_on_data,
    register_model,
    rollback,
)
from shipyard.store import Store
from tests.registry import registry_workers

X = pd.DataFrame({"a": np.arange(20, dtype=float)})
Y = 2.0 * X["a"].to_numpy()


def add(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    rmse: float | None,
    name: str = "lead",
    slope: float = 2.0,
) -> int:
    model = LinearRegression().fit(X, slope * X["a"])
    metrics = None if rmse is None else {"rmse": rmse, "r2": 1 - rmse}
    return register_model(store, artifacts, ctx, name, model, metrics=metrics).version


def test_first_then_win_then_lose(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    v1 = add(store, artifacts, ctx, 0.5)
    first = promote_if_better(store, artifacts, ctx, "lead", v1)
    assert first.promoted and first.incumbent_version is None and first.semver == "1.0.0"
    assert "no incumbent" in first.reason

    v2 = add(store, artifacts, ctx, 0.3)
    win = promote_if_better(store, artifacts, ctx, "lead", v2)
    assert win.promoted and win.semver == "1.0.1"
    assert (win.candidate_value, win.incumbent_value, win.incumbent_version) == (0.3, 0.5, 1)
    production = get_model_version(store, "p1", "lead", alias="production")
    assert (production.version, production.semver) == (2, "1.0.1")

    v3 = add(store, artifacts, ctx, 0.4)
    lose = promote_if_better(store, artifacts, ctx, "lead", v3)
    assert not lose.promoted and lose.semver is None
    assert "does not beat" in lose.reason
    assert get_model_version(store, "p1", "lead", alias="production").version == 2
    assert get_model_version(store, "p1", "lead", version=3).semver is None

    history = alias_history(store, "p1", "lead", "production")
    assert [(h.from_version, h.to_version) for h in history] == [(None, 1), (1, 2), (2, 2)]
    assert history[-1].decision is not None and history[-1].decision["promoted"] is False
    # The rejected decision is history, not a move: rollback goes back to version 1.
    assert rollback(store, ctx, "lead", "production").version == 1


def test_min_delta_mode_and_bumps(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    v1 = add(store, artifacts, ctx, 0.5)
    promote_if_better(store, artifacts, ctx, "lead", v1, alias="prod")
    v2 = add(store, artifacts, ctx, 0.45)
    small = promote_if_better(store, artifacts, ctx, "lead", v2, alias="prod", min_delta=0.1)
    assert not small.promoted and "min_delta 0.1" in small.reason
    big = promote_if_better(
        store, artifacts, ctx, "lead", v2, alias="prod", min_delta=0.01, bump="minor"
    )
    assert big.promoted and big.semver == "1.1.0"
    # r2 is higher-is-better: with mode="max" version 2 (r2 0.55) beats 1 (r2 0.5).
    v3 = add(store, artifacts, ctx, 0.6)  # r2 0.4
    worse = promote_if_better(
        store, artifacts, ctx, "lead", v3, metric="r2", mode="max", alias="prod"
    )
    assert not worse.promoted
    same = promote_if_better(store, artifacts, ctx, "lead", v2, alias="prod")
    assert not same.promoted and "already holds" in same.reason
    v4 = add(store, artifacts, ctx, 0.1)
    major = promote_if_better(store, artifacts, ctx, "lead", v4, alias="prod", bump="major")
    assert major.semver == "2.0.0"


def test_bad_arguments(store: Store, artifacts: ArtifactStore, ctx: RequestContext) -> None:
    v1 = add(store, artifacts, ctx, None)
    with pytest.raises(InvalidArgument, match="no metric 'rmse'"):
        promote_if_better(store, artifacts, ctx, "lead", v1)
    for kwargs, field in [
        ({"mode": "lowest"}, "mode"),
        ({"min_delta": -1.0}, "min_delta"),
        ({"bump": "micro"}, "bump"),
        ({"alias": "1"}, "alias"),
    ]:
        with pytest.raises(InvalidArgument) as info:
            promote_if_better(store, artifacts, ctx, "lead", v1, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_promotion_on_a_dataset(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, settings: Settings
) -> None:
    # Registered metrics claim the opposite of the truth: the dataset decides.
    good = add(store, artifacts, ctx, 0.9, slope=2.0)
    bad = add(store, artifacts, ctx, 0.1, slope=3.0)
    first = promote_if_better_on_data(store, artifacts, ctx, "lead", bad, X, Y, settings=settings)
    assert first.promoted and first.source == "dataset"
    decision = promote_if_better_on_data(
        store, artifacts, ctx, "lead", good, X, Y, settings=settings
    )
    assert decision.promoted and decision.incumbent_version == bad
    assert decision.candidate_value == pytest.approx(0.0, abs=1e-9)
    assert decision.incumbent_value == pytest.approx(float(np.sqrt(np.mean(X["a"] ** 2))))
    back = promote_if_better_on_data(
        store, artifacts, ctx, "lead", bad, X, Y, settings=settings, metric="r2"
    )
    assert not back.promoted and back.mode == "max"
    with pytest.raises(InvalidArgument, match="cannot be computed"):
        promote_if_better_on_data(
            store, artifacts, ctx, "lead", bad, X, Y, settings=settings, metric="auc"
        )


def test_racing_promotions_leave_one_consistent_history(
    store_uri: str, store: Store, artifacts: ArtifactStore, ctx: RequestContext, tmp_path: Path
) -> None:
    add(store, artifacts, ctx, 0.5, name="racer")
    promote_if_better(store, artifacts, ctx, "racer", 1)
    candidates = [add(store, artifacts, ctx, rmse, name="racer") for rmse in (0.4, 0.3, 0.2)]
    # The best candidate twice: only one of its two promotions can win.
    jobs = [*candidates, candidates[-1]]
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(len(jobs)) as pool:
        results = pool.starmap(
            registry_workers.promote, [(store_uri, artifacts.location, v) for v in jobs]
        )
    assert results.count(True) >= 1
    assert results[2:].count(True) == 1
    assert get_model_version(store, "p1", "racer", alias="production").version == 4
    moves = [
        h
        for h in alias_history(store, "p1", "racer", "production")
        if h.from_version != h.to_version
    ]
    # Each move starts where the previous one ended, and each was an improvement.
    for before, after in itertools.pairwise(moves):
        assert after.from_version == before.to_version
    for move in moves[1:]:
        assert move.decision is not None
        assert move.decision["candidate_value"] < move.decision["incumbent_value"]
    semvers = [
        get_model_version(store, "p1", "racer", version=m.to_version).semver
        for m in moves
        if m.to_version is not None
    ]
    assert len(set(semvers)) == len(semvers)
