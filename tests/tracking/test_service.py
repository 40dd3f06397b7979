"""Tracking service on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from shipyard.context import RequestContext
from shipyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from shipyard.store import Store
from shipyard.tracking import search, service

CTX = RequestContext(project="p1", actor="alice")


def test_run_lifecycle_records_params_metrics_tags(store: Store) -> None:
    run = service.create_run(store, CTX, "exp", name="first", params={"max_depth": 6})
    service.log_batch(store, CTX, run.id, metrics=[("rmse", 0.5, 0), ("rmse", 0.3, 1)],
                      tags={"team": "sales"})
    service.log_batch(store, CTX, run.id, metrics=[("rmse", 0.9, 0)])  # older step
    done = service.set_terminated(store, CTX, run.id)
    assert done.status == "FINISHED"
    assert done.params == {"max_depth": "6"}
    assert done.metrics == {"rmse": 0.3}  # the latest step wins, not the latest write
    assert done.tags["team"] == "sales"
    history = service.metric_history(store, "p1", run.id, "rmse")
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (0, 0.9), (1, 0.3)]


def test_search_filters_orders_and_pages(store: Store) -> None:
    for depth, rmse in [(3, 0.4), (6, 0.1), (6, 0.25), (9, 0.05)]:
        run = service.create_run(store, CTX, "exp", params={"max_depth": depth})
        service.log_batch(store, CTX, run.id, metrics=[("rmse", rmse)])
    page = search.search_runs(
        store, "p1", filter="metrics.rmse < 0.3 and params.max_depth = '6'",
        order_by=["metrics.rmse DESC"],
    )
    assert [r.metrics["rmse"] for r in page.runs] == [0.25, 0.1]
    first = search.search_runs(store, "p1", order_by=["metrics.rmse"], max_results=3)
    assert [r.metrics["rmse"] for r in first.runs] == [0.05, 0.1, 0.25]
    rest = search.search_runs(store, "p1", order_by=["metrics.rmse"], max_results=3,
                              page_token=first.next_page_token)
    assert [r.metrics["rmse"] for r in rest.runs] == [0.4]
    assert rest.next_page_token is None
    other = search.search_runs(store, "other-project")
    assert other.runs == []


@pytest.mark.parametrize(
    ("metrics", "field"),
    [
        ([("rmse", float("nan"))], "metrics.rmse"),
        ([("rmse", "abc")], "metrics.rmse"),
        ([("../etc", 1.0)], "metrics[1].key"),
        ([("rmse", 1.0, -1)], "metrics.rmse.step"),
        (["garbage"], "metrics[1]"),
    ],
)
def test_bad_metrics_name_the_field_and_store_nothing(
    store: Store, metrics: list[object], field: str
) -> None:
    run = service.create_run(store, CTX, "exp")
    service.log_batch(store, CTX, run.id, metrics=[("ok", 1.0)])
    with pytest.raises(InvalidArgument) as info:
        service.log_batch(store, CTX, run.id, metrics=[("ok", 2.0), *metrics])
    assert info.value.field == field
    assert service.get_run(store, "p1", run.id).metrics == {"ok": 1.0}


def test_params_are_immutable_and_finished_runs_refuse_data(store: Store) -> None:
    run = service.create_run(store, CTX, "exp", params={"lr": 0.1})
    with pytest.raises(Conflict):
        service.log_batch(store, CTX, run.id, params={"lr": 0.2})
    service.set_terminated(store, CTX, run.id, "FAILED")
    with pytest.raises(FailedPrecondition):
        service.log_batch(store, CTX, run.id, metrics=[("x", 1.0)])
    with pytest.raises(NotFound):
        service.get_run(store, "other", run.id)
    with pytest.raises(InvalidArgument):
        search.search_runs(store, "p1", filter="metrics.rmse <")
