# ruff: noqa: F811 - the fixtures imported from tests.server.conftest are parameters here
"""Every list and string a request can grow is bounded, and refused with a 400 naming it.

The report: ``runs:search`` with 31-62 ``order_by`` entries made SQLite 3.40 (Debian 12's
library) segfault, one outer join per entry, killing the server with its embedded worker;
63 gave a 500 ("at most 64 tables in a join") and 2,000 a RecursionError. A ``page_token``
holding an offset of 10**30 gave a 500 (OverflowError binding it). The search bounds are
checked in the service, so the SDK in local mode and the server answer with the same
message; the REST models declare a hard cap on top, so an abusive list is refused before
anything parses its entries.

The servers run in this process: a regression of the order_by bound would crash the test
worker, so the reproduction of the crash itself runs in a child process.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.client import HttpSession
from shipyard.client.tracking import HttpTracking
from shipyard.config import Settings
from shipyard.errors import InvalidArgument
from shipyard.sdk.local import LocalSession
from shipyard.sdk.local.tracking import LocalTracking
from shipyard.tracking import search
from shipyard.tracking.filters import MAX_CLAUSES
from tests.server.conftest import admin, assert_problem, live, live_uri, project  # noqa: F401
from tests.server.live import LiveServer


def _token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode()


def _offset_token(offset: Any) -> str:
    return _token(json.dumps({"offset": offset}).encode())


@pytest.fixture
def runs_url(admin: httpx.Client, project: str) -> str:
    """A project holding two runs, so every search below really executes its SQL."""
    for value in ("1", "2"):
        response = admin.post(f"/api/v1/projects/{project}/runs",
                              json={"experiment": "e", "params": {"k0": value}})
        assert response.status_code == 200, response.text
    return f"/api/v1/projects/{project}/runs"


def _search(admin: httpx.Client, runs_url: str, **body: Any) -> httpx.Response:
    return admin.post(f"{runs_url}:search", json=body)


# -- order_by -------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [6, 31, 40, search.MAX_ORDER_BY_ENTRIES])
def test_more_than_five_distinct_order_by_keys_is_400(admin: httpx.Client, runs_url: str,
                                                      count: int) -> None:
    keys = [f"params.k{i}" for i in range(count)]
    response = _search(admin, runs_url, order_by=keys)
    assert_problem(response, 400, "order_by")
    assert response.json()["detail"] == (
        f"order_by has {count} distinct keys; the limit is {search.MAX_ORDER_BY}"
    )


@pytest.mark.parametrize("count", [search.MAX_ORDER_BY_ENTRIES + 1, 63, 2000])
def test_an_order_by_list_over_the_hard_cap_is_refused_unparsed(
    admin: httpx.Client, runs_url: str, count: int
) -> None:
    # The same key over and over: only the length is wrong.
    response = _search(admin, runs_url, order_by=["params.k0"] * count)
    assert_problem(response, 400, "order_by")
    assert str(search.MAX_ORDER_BY_ENTRIES) in response.json()["detail"]


def test_repeated_order_by_keys_count_once_and_the_first_wins(admin: httpx.Client,
                                                              runs_url: str) -> None:
    # Eleven entries, five distinct keys: spelled differently, or with another direction
    # (which cannot change an order the first mention already decided).
    order_by = ["params.k0 DESC", "params.k0", "params.`k0`", "params.k0 ASC",
                "metrics.m", "metrics.m DESC", "tags.t", "name", "attributes.name",
                "start_time", "START_TIME desc"]
    response = _search(admin, runs_url, order_by=order_by)
    assert response.status_code == 200, response.text
    assert [r["params"]["k0"] for r in response.json()["runs"]] == ["2", "1"]


def test_a_full_order_by_still_sorts(admin: httpx.Client, runs_url: str) -> None:
    keys = ["params.k0", "params.k1", "metrics.m", "tags.t", "end_time"]
    response = _search(admin, runs_url, order_by=keys)
    assert response.status_code == 200, response.text
    assert [r["params"]["k0"] for r in response.json()["runs"]] == ["1", "2"]


_CRASH = """
import sys
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.store import open_store
from shipyard.tracking import search, service

store = open_store(sys.argv[1], cached=False)
ctx = RequestContext(project="p", actor="a", request_id="r", client="c")
service.create_run(store, ctx, "e", params={"k0": "1"})
try:
    search.search_runs(store, "p", order_by=[f"params.k{i}" for i in range(40)])
except InvalidArgument as exc:
    print(exc.field, exc.message)
"""


def test_forty_order_by_keys_do_not_crash_sqlite(tmp_path: Path) -> None:
    # Before the bound this process died of SIGSEGV inside SQLite 3.40.
    done = subprocess.run([sys.executable, "-c", _CRASH, f"sqlite:///{tmp_path / 'db'}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "order_by order_by has 40 distinct keys; the limit is 5"


# -- experiments, filter, page_token ----------------------------------------------------------

def test_experiments_over_the_limit_is_400(admin: httpx.Client, runs_url: str) -> None:
    names = [f"e{i}" for i in range(search.MAX_EXPERIMENTS + 1)]
    assert_problem(_search(admin, runs_url, experiments=names), 400, "experiments")
    ok = _search(admin, runs_url, experiments=["e"] * search.MAX_EXPERIMENTS)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["runs"]) == 2


def test_a_filter_over_the_clause_limit_is_400(admin: httpx.Client, runs_url: str) -> None:
    at_limit = " and ".join(["params.k0 != 'x'"] * MAX_CLAUSES)
    response = _search(admin, runs_url, filter=at_limit)
    assert response.status_code == 200, response.text
    assert len(response.json()["runs"]) == 2
    over = " and ".join(["name != 'x'"] * (MAX_CLAUSES + 1))
    response = _search(admin, runs_url, filter=over)
    assert_problem(response, 400, "filter")
    assert response.json()["detail"] == (
        f"filter has {MAX_CLAUSES + 1} clauses; the limit is {MAX_CLAUSES}"
    )


def test_a_filter_of_thousands_of_clauses_is_refused(admin: httpx.Client, runs_url: str
                                                     ) -> None:
    # Too long to be read at all: refused on its length, before it is parsed.
    huge = " and ".join(["name != 'x'"] * 3000)
    assert_problem(_search(admin, runs_url, filter=huge), 400, "filter")


@pytest.mark.parametrize("token", [
    _offset_token(10**30),
    _offset_token(2**63),
    _offset_token(search.MAX_OFFSET + 1),
    _offset_token(-1),
    _offset_token(1.5),
    _offset_token(True),
    _offset_token("7"),
    _token(b'{"offset": Infinity}'),
    _token(b'{"offset": NaN}'),
    _token(b"[1]"),
    _token(b"[" * 140),
    "not base64 at all!",
])
def test_a_page_token_the_server_did_not_issue_is_400(admin: httpx.Client, runs_url: str,
                                                       token: str) -> None:
    response = _search(admin, runs_url, page_token=token)
    assert_problem(response, 400, "page_token")
    assert response.json()["detail"] == "page_token is not a token this server issued"


def test_issued_page_tokens_still_page(admin: httpx.Client, runs_url: str) -> None:
    first = _search(admin, runs_url, max_results=1).json()
    second = _search(admin, runs_url, max_results=1, page_token=first["next_page_token"])
    assert second.status_code == 200, second.text
    assert len(second.json()["runs"]) == 1
    far = _search(admin, runs_url, page_token=_offset_token(search.MAX_OFFSET))
    assert far.status_code == 200 and far.json()["runs"] == []


# -- local mode answers as the server does ------------------------------------------------------

@pytest.fixture
def backends(live: LiveServer, project: str, runs_url: str, tmp_path: Path
             ) -> Iterator[tuple[LocalTracking, HttpTracking]]:
    settings = live.settings
    local = LocalSession(Settings.resolve(home=settings.home, uri=settings.uri,
                                          artifacts=settings.artifacts, project=project,
                                          environ={}))
    remote = HttpSession(Settings.resolve(home=tmp_path / "client", uri=live.url,
                                          token=live.token, project=project, environ={}))
    try:
        yield local.tracking, remote.tracking
    finally:
        remote.close()


SAME_ANSWER: dict[str, dict[str, Any]] = {
    "six distinct order_by keys": {"order_by": [f"params.k{i}" for i in range(6)]},
    "forty order_by keys": {"order_by": [f"metrics.m{i}" for i in range(40)]},
    "an order_by entry that is no key": {"order_by": ["params.k0", "colour"]},
    "too many filter clauses": {"filter": " and ".join(["status = 'RUNNING'"] * 51)},
    "an offset of 10**30": {"page_token": _offset_token(10**30)},
    "an offset of Infinity": {"page_token": _token(b'{"offset": Infinity}')},
}


@pytest.mark.parametrize("case", SAME_ANSWER)
def test_local_and_remote_mode_give_the_same_error(
    backends: tuple[LocalTracking, HttpTracking], case: str
) -> None:
    answers: list[tuple[str | None, str]] = []
    for backend in backends:
        call: Callable[..., Any] = backend.search_runs
        with pytest.raises(InvalidArgument) as info:
            call(**SAME_ANSWER[case])
        answers.append((info.value.field, info.value.message))
    assert answers[0] == answers[1]
    assert answers[0][0] is not None


def test_local_mode_bounds_the_lists_too(backends: tuple[LocalTracking, HttpTracking]) -> None:
    local, _ = backends
    with pytest.raises(InvalidArgument) as info:
        local.search_runs(experiments=[f"e{i}" for i in range(search.MAX_EXPERIMENTS + 1)])
    assert info.value.field == "experiments"
    with pytest.raises(InvalidArgument) as info:
        local.search_runs(order_by=["name"] * (search.MAX_ORDER_BY_ENTRIES + 1))
    assert info.value.field == "order_by"
    with pytest.raises(InvalidArgument) as info:
        local.search_runs(page_token="x" * 10_000)
    assert info.value.field == "page_token"


# -- the other lists a request body can grow -------------------------------------------------

def test_log_batch_lists_are_capped_in_the_schema(admin: httpx.Client, runs_url: str) -> None:
    run_id = _search(admin, runs_url).json()["runs"][0]["id"]
    url = f"{runs_url}/{run_id}/log-batch"
    metrics = [{"key": "m", "value": 1.0, "step": i} for i in range(10_001)]
    assert_problem(admin.post(url, json={"metrics": metrics}), 400, "metrics")
    params = {f"p{i}": "1" for i in range(1001)}
    assert_problem(admin.post(url, json={"params": params}), 400, "params")
    tags = {f"t{i}": "1" for i in range(1001)}
    assert_problem(admin.post(url, json={"tags": tags}), 400, "tags")
    assert_problem(admin.post(runs_url, json={"experiment": "e", "tags": tags}), 400, "tags")
    assert_problem(admin.post(runs_url, json={"experiment": "e", "params": params}), 400,
                   "params")


@pytest.mark.parametrize(("metadata", "field"), [
    ({"labels": {f"l{i}": "x" for i in range(65)}}, "metadata.labels"),
    ({"metrics": {f"m{i}": 1.0 for i in range(1001)}}, "metadata.metrics"),
    ({"aliases": [f"a{i}" for i in range(65)]}, "metadata.aliases"),
    ({"aliases": ["a" * 129]}, "metadata.aliases.0"),
])
def test_model_version_metadata_lists_are_capped(admin: httpx.Client, project: str,
                                                 metadata: dict[str, Any], field: str) -> None:
    # The metadata is read before the archive: no model is needed to be refused.
    response = admin.post(f"/api/v1/projects/{project}/models/m/versions",
                          data={"metadata": json.dumps(metadata)},
                          files={"model": ("model.tar", b"", "application/x-tar")})
    assert_problem(response, 400, field)


def test_openapi_declares_the_bounds(admin: httpx.Client) -> None:
    schemas = admin.get("/openapi.json").json()["components"]["schemas"]

    def max_items(model: str, field: str) -> int:
        prop = schemas[model]["properties"][field]
        (declared,) = [s["maxItems"] for s in prop.get("anyOf", [prop]) if "maxItems" in s]
        return int(declared)

    assert max_items("SearchRuns", "order_by") == search.MAX_ORDER_BY_ENTRIES
    assert max_items("SearchRuns", "experiments") == search.MAX_EXPERIMENTS
    assert max_items("LogBatch", "metrics") == 10_000


def test_a_pipeline_spec_nested_too_deeply_or_with_aliases_is_400() -> None:
    from shipyard.errors import InvalidArgument
    from shipyard.pipelines.compiler import parse_spec

    deep = "schemaVersion: x\nroot: " + "[" * 50_000 + "]" * 50_000
    with pytest.raises(InvalidArgument, match="nested too deeply") as info:
        parse_spec(deep)
    assert info.value.field == "spec"
    # Nine levels of nine aliases each: 387 million leaves once expanded.
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(InvalidArgument, match="aliases") as info:
        parse_spec(bomb)
    assert info.value.field == "spec"
