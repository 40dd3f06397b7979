"""``log_batch`` refuses data for runs that do not accept it, whatever the first statement of
its transaction is (the check rides on that statement), with the errors and messages a
separate look-up gave, and writes nothing then (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.context import RequestContext
from shipyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, TooLarge
from shipyard.store import Store
from shipyard.tracking import service

CTX = RequestContext(project="p1", actor="alice")

# One of each first statement: a point, points, a param, params, a tag, and mixtures.
PAYLOADS: dict[str, dict[str, Any]] = {
    "one point": {"metrics": [("loss", 1.0, 3)]},
    "points": {"metrics": [("loss", 1.0, 3), ("acc", 0.5, 3), ("loss", 0.9, 4)]},
    "one param": {"params": {"lr": "0.1"}},
    "params": {"params": {"lr": "0.1", "depth": 6}},
    "one tag": {"tags": {"team": "sales"}},
    "tags and points": {"tags": {"team": "sales"}, "metrics": [("loss", 1.0, 3)]},
    "everything": {"params": {"lr": "0.1"}, "tags": {"team": "sales"},
                   "metrics": [("loss", 1.0, 3)]},
}


def _stored(store: Store, run_id: str) -> tuple[Any, ...]:
    run = service.get_run(store, "p1", run_id)
    history = service.metric_history(store, "p1", run_id, "loss")
    return run.params, run.metrics, {k: v for k, v in run.tags.items() if k == "team"}, history


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_an_ended_run_refuses_every_kind_of_data(store: Store, payload: str,
                                                 status: str) -> None:
    run = service.create_run(store, CTX, "exp")
    service.set_terminated(store, CTX, run.id, status)
    before = _stored(store, run.id)
    with pytest.raises(FailedPrecondition) as caught:
        service.log_batch(store, CTX, run.id, **PAYLOADS[payload])
    assert str(caught.value) == f"run {run.id} is {status}; it no longer accepts data"
    assert _stored(store, run.id) == before


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_run_of_another_project_or_no_run_is_not_found(store: Store, payload: str) -> None:
    run = service.create_run(store, CTX, "exp")
    other = RequestContext(project="p2", actor="alice")
    with pytest.raises(NotFound) as caught:
        service.log_batch(store, other, run.id, **PAYLOADS[payload])
    assert str(caught.value) == f"run {run.id} not found in project 'p2'"
    assert caught.value.field == "run_id"
    assert _stored(store, run.id) == ({}, {}, {}, [])
    missing = "0" * 32
    with pytest.raises(NotFound) as caught:
        service.log_batch(store, CTX, missing, **PAYLOADS[payload])
    assert str(caught.value) == f"run {missing} not found in project 'p1'"


def test_a_running_run_takes_every_kind_of_data(store: Store) -> None:
    run = service.create_run(store, CTX, "exp")
    for payload in PAYLOADS.values():
        service.log_batch(store, CTX, run.id, **payload)
    params, metrics, tags, history = _stored(store, run.id)
    assert params == {"lr": "0.1", "depth": "6"}
    assert metrics == {"loss": 0.9, "acc": 0.5}
    assert tags == {"team": "sales"}
    assert len(history) == 5  # "loss" points of all payloads


def test_params_logged_again_are_checked_whichever_comes_first(store: Store) -> None:
    run = service.create_run(store, CTX, "exp", params={"lr": "0.1"})
    # The same value again, first in the batch (the statement that checks the run writes
    # no row) and later in it: accepted, and the new key is stored.
    service.log_batch(store, CTX, run.id, params={"lr": "0.1"})
    service.log_batch(store, CTX, run.id, params={"lr": "0.1", "depth": "6"})
    service.log_batch(store, CTX, run.id, params={"seed": "7", "lr": "0.1"})
    # A different value, first or later: refused, and nothing of the batch is stored.
    for params in ({"lr": "0.2", "new": "1"}, {"new": "1", "lr": "0.2"}):
        with pytest.raises(Conflict) as caught:
            service.log_batch(store, CTX, run.id, params=params,
                              metrics=[("loss", 1.0, 0)])
        assert caught.value.field == "params.lr"
    params_now, metrics, _, _ = _stored(store, run.id)
    assert params_now == {"lr": "0.1", "depth": "6", "seed": "7"}
    assert metrics == {}


def test_a_tag_set_again_first_in_a_batch_is_updated(store: Store) -> None:
    run = service.create_run(store, CTX, "exp")
    service.log_batch(store, CTX, run.id, tags={"team": "sales"})
    service.log_batch(store, CTX, run.id, tags={"team": "ops"}, metrics=[("loss", 1.0, 0)])
    _, metrics, tags, _ = _stored(store, run.id)
    assert tags == {"team": "ops"}
    assert metrics == {"loss": 1.0}


class _Text(str):
    pass


@pytest.mark.parametrize("field", ["params", "tags"])
@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        ("x" * 8001, TooLarge, "too long"),
        (_Text("x" * 8001), TooLarge, "too long, a str subclass"),
        ("a\x00b", InvalidArgument, "NUL"),
        (float("nan"), InvalidArgument, "not finite"),
    ],
    ids=["too long", "too long, a str subclass", "NUL", "not finite"],
)
def test_a_bad_param_or_tag_value_names_its_field_and_writes_nothing(
    store: Store, field: str, value: Any, error: type[Exception], reason: str
) -> None:
    run = service.create_run(store, CTX, "exp")
    with pytest.raises(error) as failed:
        service.log_batch(store, CTX, run.id, metrics=[("loss", 1.0, 3)],
                          **{field: {"ok": "fine", "bad": value}})
    assert getattr(failed.value, "field", None) == f"{field}.bad", reason
    assert _stored(store, run.id) == ({}, {}, {}, [])


@pytest.mark.parametrize("field", ["params", "tags"])
def test_params_and_tags_must_be_a_mapping_with_valid_keys(store: Store, field: str) -> None:
    run = service.create_run(store, CTX, "exp")
    pairs: Any = [("lr", "0.1")]
    with pytest.raises(InvalidArgument) as failed:
        service.log_batch(store, CTX, run.id, **{field: pairs})
    assert failed.value.field == field
    with pytest.raises(InvalidArgument) as failed:
        service.log_batch(store, CTX, run.id, **{field: {"../lr": "0.1"}})
    assert failed.value.field == f"{field}.key"
    service.log_batch(store, CTX, run.id, **{field: {"lr": "0.1", "depth": 6}})
    stored = service.get_run(store, "p1", run.id)
    assert getattr(stored, field)["lr"] == "0.1" and getattr(stored, field)["depth"] == "6"
