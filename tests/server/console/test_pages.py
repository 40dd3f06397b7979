"""The console without a browser: deny by default for its routes, error pages for bad
input (never a 500 or a traceback), problem+json for API clients, and the sign-in rules.
Runs on an empty store (every page's empty state) through the app in this process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import HTMLResponse

from shipyard.config import Settings
from shipyard.server.api.identity import issue_login_link
from shipyard.server.app import bootstrap, create_app
from tests.conftest import _pg_database, require_postgres

HTML = {"Accept": "text/html,application/xhtml+xml"}
BASE = "/console/projects/default"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[FastAPI]:
    """The app on an empty store, on each backend (the overview's counts and the runs
    page's search are SQL of their own)."""
    home = tmp_path_factory.mktemp("pages")
    if request.param == "sqlite":
        uris: Iterator[str] = iter([f"sqlite:///{home / 'db.sqlite'}"])
    else:
        require_postgres()
        uris = _pg_database()
    for uri in uris:
        settings = Settings.resolve(home=home, uri=uri, artifacts=str(home / "blobs"),
                                    environ={})
        bootstrap(settings)
        app = create_app(settings, worker=False)
        try:
            yield app
        finally:
            app.state.shipyard.store.dispose()


@pytest.fixture(scope="module")
def token(app: FastAPI) -> str:
    from shipyard.security.credentials import read_credentials

    found = read_credentials(app.state.shipyard.settings.home)
    assert found is not None
    return found


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    with _Sync(transport) as client:
        yield client


class _Sync(httpx.Client):
    """httpx's ASGITransport is async only; run each request on a private event loop."""

    def __init__(self, transport: httpx.ASGITransport) -> None:
        super().__init__(base_url="http://127.0.0.1", follow_redirects=False)
        self._asgi = transport

    def send(self, request: httpx.Request, **kwargs: object) -> httpx.Response:  # type: ignore[override]
        import asyncio

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._asgi,
                                         base_url="http://127.0.0.1") as client:
                response = await client.send(request)
                await response.aread()
                return response

        return asyncio.run(go())


def test_a_console_route_without_a_policy_entry_is_refused(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 'db'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    token = bootstrap(settings)
    app = create_app(settings, worker=False)
    answered: list[str] = []

    @app.get(BASE.replace("default", "{project}") + "/unlisted")
    def unlisted(project: str) -> HTMLResponse:
        answered.append(project)
        return HTMLResponse("<p>secret</p>")

    with _Sync(httpx.ASGITransport(app=app)) as http:  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {token}"}
        api = http.get(f"{BASE}/unlisted", headers=headers)
        page = http.get(f"{BASE}/unlisted", headers={**headers, **HTML})
    assert api.status_code == 403
    assert api.headers["content-type"].startswith("application/problem+json")
    assert "no access policy" in api.json()["detail"]
    assert page.status_code == 403 and "no access policy" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert answered == []


def test_every_page_shows_its_empty_state(http: httpx.Client, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", **HTML}
    for path in ("", "/runs", "/pipelines", "/lineage", "/models"):
        response = http.get(BASE + path, headers=headers)
        assert response.status_code == 200, (path, response.text[:300])
        assert "shipyard quickstart" in response.text, path
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert "<script>" not in response.text  # no inline script: the policy allows none


def test_the_newer_pages_show_their_empty_states(http: httpx.Client, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", **HTML}
    for path, says in (("/events", "No schedules yet"), ("/events", "No topics yet"),
                       ("/events", "No dead letters"), ("/monitors", "No monitors yet"),
                       ("/admin", "No grants yet"), ("/endpoints", "No endpoints yet")):
        response = http.get(BASE + path, headers=headers)
        assert response.status_code == 200, (path, response.text[:300])
        assert says in response.text, path
        assert "<script>" not in response.text


def test_latency_percentiles_interpolate_within_the_histograms_buckets() -> None:
    from shipyard.server.console.traffic import quantile

    # 50 requests took up to 2 ms, 50 more up to 4 ms (cumulative counts, +Inf last).
    buckets = [(0.001, 0.0), (0.002, 50.0), (0.004, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == 0.002
    assert quantile(0.75, buckets) == 0.003
    assert abs(quantile(0.99, buckets) - 0.00396) < 1e-12  # type: ignore[operator]
    # Beyond the last finite bound: that bound (as histogram_quantile answers).
    assert quantile(0.99, [(0.001, 1.0), (float("inf"), 10.0)]) == 0.001
    assert quantile(0.5, [(0.001, 0.0), (float("inf"), 0.0)]) is None  # nothing counted


# Fixed ids, not new_id(): pytest-xdist workers each collect the parameters and must agree.
UNKNOWN = ["01a23ba1a1c1" + f"{n:020x}" for n in range(16)]

HOSTILE = [
    ("/runs?filter=metrics.rmse+%3C", 400, "filter"),
    ("/runs?filter=" + "x" * 1001, 400, "filter"),
    ("/runs?order=metrics.rmse+SIDEWAYS", 400, "direction must be ASC or DESC"),
    ("/runs?order=%3Cscript%3E", 400, "cannot order by"),
    ("/runs?page=eyJvZmZzZXQiOiAxZTMwMH0=", 400, "page_token"),
    ("/runs?size=0", 400, "size"),
    ("/runs?experiment=..%2F..", 400, "experiment"),
    ("/runs/not-an-id", 400, "run_id"),
    ("/runs/compare", 400, "pick 2 to 10 runs"),
    (f"/runs/compare?run={UNKNOWN[0]}", 400, "pick 2 to 10 runs"),
    ("/runs/compare?" + "&".join(f"run={u}" for u in UNKNOWN[5:16]), 400, "run"),
    (f"/runs/compare?run={UNKNOWN[1]}&run=..%2F..", 400, "run_id"),
    (f"/runs/compare?run={UNKNOWN[2]}&run={UNKNOWN[3]}", 404, "not found"),
    (f"/runs/{UNKNOWN[4]}", 404, "not found"),
    ("/pipelines?state=%27%3B--", 400, "not a run state"),
    (f"/pipelines/{UNKNOWN[5]}", 404, "not found"),
    ("/pipelines/%2e%2e%2f%2e%2e", 404, ""),
    ("/lineage?type=..", 400, "type"),
    (f"/lineage/{UNKNOWN[6]}?depth=1000", 400, "depth"),
    (f"/lineage/{UNKNOWN[7]}?direction=sideways", 400, "direction"),
    (f"/lineage/{UNKNOWN[8]}", 404, "not found"),
    ("/models/%3Cimg%20src%3Dx%3E", 400, "name"),
    ("/models/nope", 404, "no model"),
    ("/models?filter=metrics.rmse+%3C%3C+1", 400, ""),
    ("/models?page=0", 400, "page"),
    (f"/pipelines/{UNKNOWN[9]}/live", 404, "not found"),
    ("/events?limit=0", 400, "limit"),
    ("/events?limit=100000", 400, "limit"),
    ("/events?topic=" + "x" * 200, 400, "topic"),
    ("/monitors/%3Cimg%20src%3Dx%3E", 400, "name"),
    ("/monitors/nope", 404, "nope"),
    ("/admin?before=0", 400, "before"),
    ("/admin?tokens=%3Cscript%3E", 400, "tokens"),
    ("/admin?action=%25%3Cscript%3E", 200, "No audit rows match"),
    ("/endpoints/nope", 404, "nope"),
]


@pytest.mark.parametrize(("path", "status", "says"), HOSTILE)
def test_bad_input_is_an_error_page_never_a_500(http: httpx.Client, token: str, path: str,
                                                 status: int, says: str) -> None:
    response = http.get(BASE + path, headers={"Authorization": f"Bearer {token}", **HTML})
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert says in response.text
    assert "Traceback" not in response.text
    # Whatever the input held comes back escaped, never as markup.
    assert "<script>" not in response.text and "<img src=x>" not in response.text


def test_a_project_name_that_is_no_name_is_refused(http: httpx.Client, token: str) -> None:
    response = http.get("/console/projects/..%2Fadmin/runs",
                        headers={"Authorization": f"Bearer {token}", **HTML})
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.text


def test_api_clients_get_problems_and_browsers_the_sign_in_form(http: httpx.Client) -> None:
    api = http.get(BASE)
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    page = http.get(BASE + "/runs?filter=x", headers=HTML)
    assert page.status_code == 303
    assert page.headers["location"] == (
        "/console/login?next=%2Fconsole%2Fprojects%2Fdefault%2Fruns%3Ffilter%3Dx")


def test_the_sign_in_form_refuses_a_post_without_its_cookie(http: httpx.Client) -> None:
    form = http.get("/console/login", headers=HTML)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce is not None and form.cookies.get("shipyard_login") == nonce.group(1)
    fields = {"csrf_token": nonce.group(1), "name": "admin", "password": "x" * 12}
    # The token without the cookie it must equal (a forged form) is refused.
    refused = http.post("/console/login", files={k: (None, v) for k, v in fields.items()},
                        headers=HTML)
    assert refused.status_code == 400 and "CSRF" in refused.text
    # With it, the password is checked: admin has none, so the form comes back.
    checked = http.post("/console/login", files={k: (None, v) for k, v in fields.items()},
                        headers={**HTML, "Cookie": f"shipyard_login={nonce.group(1)}"})
    assert checked.status_code == 401 and "invalid user name or password" in checked.text
    # A form encoding a foreign page can send without CORS is refused before anything.
    urlencoded = http.post("/console/login", data=fields, headers=HTML)
    assert urlencoded.status_code == 415


def test_after_signing_in_only_local_paths_are_followed(app: FastAPI, http: httpx.Client
                                                        ) -> None:
    from shipyard.server.console.session import safe_next

    assert safe_next("/console/projects/x/runs?filter=a") == "/console/projects/x/runs?filter=a"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                    "javascript:alert(1)", "/\nLocation: x", "", None, 3):
        assert safe_next(hostile) == "/"
    link = issue_login_link(app.state.shipyard)
    landed = http.get(link, headers=HTML)
    assert landed.status_code == 303 and landed.headers["location"] == "/"
    cookie = landed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_static_files_are_ours_and_plotlys_only(http: httpx.Client) -> None:
    import plotly

    js = http.get("/console/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    installed = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert js.content == installed.read_bytes()
    for name in ("console.css", "console.js"):
        assert http.get(f"/console/static/{name}").status_code == 200
    for name in ("..%2F..%2Fpyproject.toml", "base.html", "plotly.js", "%2e%2e"):
        assert http.get(f"/console/static/{name}").status_code == 404, name


def test_a_paused_monitor_is_not_judged_on_its_schedule_and_resumes_on_its_grid(
        app: FastAPI, http: httpx.Client, token: str) -> None:
    # The REST routes the console's Pause and Resume buttons share their service with.
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from shipyard.context import RequestContext
    from shipyard.monitoring import monitors
    from shipyard.monitoring.config import check_config
    from shipyard.monitoring.profiles import profile
    from shipyard.serving import service as serving

    store = app.state.shipyard.store
    ctx = RequestContext(project="default", actor="tester")
    serving.create_endpoint(store, ctx, "paused-endpoint")
    config = check_config(interval="1h", window=None, sampling_rate=1.0, thresholds=None,
                          objectives=None, alert=None, alert_after=None, drift_windows=1,
                          features=None, categorical_features=None, feature_importance=None)
    start = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    monitors.create_monitor(store, ctx, "paused-monitor", endpoint="paused-endpoint",
                            config=config, start_at=start,
                            baseline_profile=profile(pd.DataFrame({"x": [1.0, 2.0]})).to_bytes())
    api = "/api/v1/projects/default/monitors/paused-monitor"
    headers = {"Authorization": f"Bearer {token}"}
    paused = http.post(f"{api}/pause", headers=headers, json={})
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused"
    assert http.get(api, headers=headers).json()["state"] == "paused"
    # Its window (due at 10:30) is not claimed while it is paused.
    settings = app.state.shipyard.settings
    assert not monitors.run_due(store, settings, "w1", now=start + timedelta(hours=5))
    # Resumed at 14:45: the next window ends at 15:30 (the monitor's grid), not at once for
    # the four windows missed.
    resumed = monitors.resume_monitor(store, ctx, "paused-monitor",
                                      now=start + timedelta(hours=5, minutes=15))
    assert resumed.state == "active"
    assert resumed.next_run_at == start + timedelta(hours=6)
    again = http.post(f"{api}/resume", headers=headers, json={})  # already active: as it is
    assert again.status_code == 200 and again.json()["next_run_at"].startswith(
        "2026-01-05T15:30")
    assert http.post("/api/v1/projects/default/monitors/nope/pause", headers=headers,
                     json={}).status_code == 404
    monitors.delete_monitor(store, ctx, "paused-monitor")


def test_the_executions_page_shows_its_empty_state_and_refuses_a_forged_page_token(
        http: httpx.Client, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", **HTML}
    response = http.get(f"{BASE}/executions", headers=headers)
    assert response.status_code == 200 and "No executions yet" in response.text
    response = http.get(f"{BASE}/executions?pipeline=nope", headers=headers)
    assert response.status_code == 200 and "No executions match" in response.text
    for forged in ("garbage!", "bm90IGEgdG9rZW4", "MjAyNi0wMS0wNXxhLWI"):
        response = http.get(f"{BASE}/executions", params={"before": forged}, headers=headers)
        assert response.status_code == 400, forged
        assert "page token" in response.text and "before" in response.text


def test_a_new_monitors_baseline_is_profiled_from_a_dataset_artifact(
        app: FastAPI, tmp_path: Path) -> None:
    # A folder of Parquet files (as the quick start's ingest step writes), a CSV file, and
    # something that is not a table.
    import pandas as pd

    from shipyard.errors import InvalidArgument
    from shipyard.lineage import records
    from shipyard.monitoring.profiles import DataProfile
    from shipyard.server.console.baselines import baseline_profile

    state = app.state.shipyard
    store, blobs = state.store, state.artifacts
    folder = tmp_path / "leads"
    folder.mkdir()
    pd.DataFrame({"age": [20.0, 30.0], "plan": ["free", "pro"]}).to_parquet(
        folder / "part-0.parquet", index=False)
    pd.DataFrame({"age": [40.0], "plan": ["pro"]}).to_parquet(folder / "part-1.parquet",
                                                              index=False)
    (folder / "README.txt").write_text("not data")
    tree = blobs.put_tree(folder)
    (tmp_path / "rows.csv").write_text("age,plan\n1.5,free\n2.5,team\n")
    csv = blobs.put_file(tmp_path / "rows.csv")
    (tmp_path / "notes").write_bytes(b"\x00\x01 not a table \xff")
    junk = blobs.put_file(tmp_path / "notes")

    def artifact(digest: str, layout: str) -> str:
        created: str = store.retry_write(lambda conn: records.create_artifact(
            conn, "default", "system.Dataset", layout, blobs.uri(digest), digest=digest,
            properties={"layout": layout}))
        return created

    data, uri = baseline_profile(store, blobs, "default", artifact(tree.digest, "tree"))
    found = DataProfile.from_bytes(data)
    assert uri == blobs.uri(tree.digest)
    assert found.rows == 3 and list(found.features) == ["age", "plan"]
    assert found["age"].mean == 30.0 and found["plan"].kind == "categorical"
    data, _ = baseline_profile(store, blobs, "default", artifact(csv.digest, "file"))
    assert DataProfile.from_bytes(data)["age"].mean == 2.0
    for bad in (artifact(junk.digest, "file"), "0" * 32):
        with pytest.raises(InvalidArgument) as caught:
            baseline_profile(store, blobs, "default", bad)
        assert caught.value.field == "baseline"
