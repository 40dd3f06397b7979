"""promote_if_better: win, lose, first, min_delta, semver bumps, dataset variant, races."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sqlalchemy import text

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.registry import (
    alias_history,
    get_model_version,
    promote_if_better,
    promote_if_better_on_data,
    promotion,
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


# The documented rule (docs/registry.md): the candidate moves the alias only if it is better
# than the incumbent by MORE than min_delta; equal is not better. The figures are exact in
# binary, so each "by exactly min_delta" case really is a tie at the boundary.
BOUNDARY = [
    # mode, incumbent, candidate, min_delta, promoted
    ("min", 0.5, 0.5, 0.0, False),  # a tie
    ("min", 0.5, float(np.nextafter(0.5, 0.0)), 0.0, True),  # the smallest possible gain
    ("min", 0.5, 0.75, 0.0, False),  # worse
    ("min", 0.5, 0.25, 0.25, False),  # better by exactly min_delta
    ("min", 0.5, 0.125, 0.25, True),  # better by more than min_delta
    ("max", 0.5, 0.5, 0.0, False),
    ("max", 0.5, float(np.nextafter(0.5, 1.0)), 0.0, True),
    ("max", 0.5, 0.25, 0.0, False),  # lower is worse when higher is better
    ("max", 0.5, 0.75, 0.25, False),
    ("max", 0.5, 0.875, 0.25, True),
]


def test_promotion_needs_a_gain_of_more_than_min_delta(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    model = LinearRegression().fit(X, Y)
    wrong = []
    for case, (mode, incumbent, candidate, min_delta, promoted) in enumerate(BOUNDARY):
        name = f"edge-{case}"
        first = register_model(store, artifacts, ctx, name, model, metrics={"score": incumbent})
        second = register_model(store, artifacts, ctx, name, model, metrics={"score": candidate})
        kwargs: dict[str, Any] = {"metric": "score", "mode": mode}
        assert promote_if_better(store, artifacts, ctx, name, first.version, **kwargs).promoted
        decision = promote_if_better(
            store, artifacts, ctx, name, second.version, min_delta=min_delta, **kwargs
        )
        holder = get_model_version(store, "p1", name, alias="production").version
        got = (decision.promoted, holder, decision.semver, decision.incumbent_version,
               decision.candidate_value, decision.incumbent_value)  # fmt: skip
        expected = (promoted, second.version if promoted else first.version,
                    "1.0.1" if promoted else None, first.version, candidate, incumbent)  # fmt: skip
        if got != expected:
            wrong.append(f"{BOUNDARY[case]}: got {got}, expected {expected} ({decision.reason})")
    assert not wrong, "\n".join(wrong)


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


# -- racing promoters forced to meet ----------------------------------------------------------
ROUNDS = 5


class Meeting:
    """Holds the first promoter inside its decision until the second one shows where it is.

    Installed over ``promotion._compare``, which runs inside the decision's write transaction
    after the model row is locked and the incumbent read. The first promoter to get there
    waits until the second either gets there too (the lock is missing: both decide on the
    same incumbent) or is seen by PostgreSQL waiting for a lock (the lock works). Neither
    outcome depends on timing, so a missing lock is caught in every round.
    """

    def __init__(self, store: Store, compare: Callable[..., tuple[bool, str]]) -> None:
        self.store = store
        self.compare = compare
        self.guard = threading.Lock()
        self.arrivals = 0
        self.second_inside = threading.Event()
        self.met = False

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[bool, str]:
        with self.guard:
            self.arrivals += 1
            first = self.arrivals == 1
        if not first:
            self.second_inside.set()
        else:
            deadline = time.monotonic() + 30
            while not self.second_inside.is_set() and not self._other_waits_for_a_lock():
                assert time.monotonic() < deadline, "the other promoter never showed up"
                time.sleep(0.005)
            self.met = self.second_inside.is_set()
        return self.compare(*args, **kwargs)

    def _other_waits_for_a_lock(self) -> bool:
        # A new transaction per look: pg_stat_activity is a snapshot taken once per transaction.
        with self.store.engine.connect() as conn:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )).scalar()  # fmt: skip
        return bool(waiting)


def _race(store: Store, artifacts: ArtifactStore, ctx: RequestContext, alias: str,
          versions: list[int]) -> list[BaseException]:  # fmt: skip
    """Promote ``versions`` from one thread each, released together; the errors raised."""
    start = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def promote(version: int) -> None:
        try:
            start.wait(timeout=30)
            promote_if_better(store, artifacts, ctx, "racer", version, alias=alias)
        except BaseException as exc:  # reported by the test, from its own thread
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a promoter is still running"
    return errors


def test_promoters_forced_to_interleave_are_serialized_by_the_lock(
    pg_store: Store, artifacts: ArtifactStore, ctx: RequestContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    incumbent = add(pg_store, artifacts, ctx, 0.5, name="racer")
    better = add(pg_store, artifacts, ctx, 0.4, name="racer")
    best = add(pg_store, artifacts, ctx, 0.3, name="racer")
    aliases = [f"race-{round_}" for round_ in range(ROUNDS)]
    for alias in aliases:
        promote_if_better(pg_store, artifacts, ctx, "racer", incumbent, alias=alias)
    compare = promotion._compare
    for round_, alias in enumerate(aliases):
        meeting = Meeting(pg_store, compare)
        monkeypatch.setattr(promotion, "_compare", meeting)
        errors = _race(pg_store, artifacts, ctx, alias, [better, best])
        assert not errors, f"round {round_}: {errors!r}"
        assert not meeting.met, f"round {round_}: both promoters were inside the decision at once"

        # The decisions form one chain: each compared against what the previous one left.
        history = alias_history(pg_store, "p1", "racer", alias)
        assert len(history) == 3, history
        holder = history[0].to_version
        for change in history[1:]:
            assert change.decision is not None
            assert change.from_version == holder, (round_, history)
            assert change.decision["incumbent_version"] == holder, (round_, history)
            holder = change.to_version
        assert holder == best
        assert get_model_version(pg_store, "p1", "racer", alias=alias).version == best
