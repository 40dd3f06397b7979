"""The console in a real browser (Debian's chromium through Playwright) against a real
server over the demo project: every page loads with no console error and no failed
request, shows its key elements, and is saved as a screenshot; a viewer sees no enabled
button; the login link works once; forms refuse a forged post."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.events import scheduler
from shipyard.lineage import records
from shipyard.monitoring import monitors
from shipyard.monitoring.config import check_config
from shipyard.monitoring.profiles import profile
from shipyard.pipelines import get_pipeline_run
from shipyard.serving import service as serving
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store.schema.monitoring import monitors as monitor_table
from tests.server.console.conftest import (
    VIEWER,
    Site,
    Watch,
    admin_context,
    viewer_context,
)
from tests.server.console.demo import (
    EXPERIMENT,
    HOOK,
    MODEL,
    PROJECT,
    SCHEDULE,
    SECRET,
    SUBSCRIPTION,
    TOPIC,
    TRIGGER,
)

Check = Callable[[Any, Site], None]
MONITOR, MONITORED = "scoring-drift", "monitored-endpoint"
# The feature 'size' drifts away from the baseline over three hourly windows (0.05, 0.12,
# 0.3 against the threshold 0.1); 'visits' stays under it. Written as a monitor's runs.
SIZE_SCORES, VISITS_SCORES, THRESHOLD = (0.05, 0.12, 0.3), (0.02, 0.03, 0.04), 0.1
# Measured from ground truth in each window, against the objective rmse <= 0.5.
RMSES, RMSE_OBJECTIVE = (0.3, 0.4, 0.6), 0.5
# Estimated without labels in each window, with its 95% band (the third estimate left the
# reference data: unreliable).
RMSE_ESTIMATES, RMSE_BANDS = (0.32, 0.45, 0.5), ((0.25, 0.39), (0.37, 0.53), (0.3, 0.7))
IDLE_MONITOR = "idle-monitor"  # never ran
ESTIMATING = "estimating-monitor"  # created through REST with a fitted estimator; never ran
TRAINING = "train.parquet"  # a dataset artifact: the create form's baseline


@pytest.fixture(scope="module", autouse=True)
def _monitored(site: Site, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = site.live.app.state.shipyard.store
    ctx = RequestContext(project=PROJECT, actor="tester")
    serving.create_endpoint(store, ctx, MONITORED)
    frame = pd.DataFrame({"size": np.arange(50.0), "visits": np.arange(50.0) % 7,
                          "plan": ["free"] * 30 + ["pro"] * 20})
    config = check_config(interval="1h", window=None, sampling_rate=1.0, thresholds=THRESHOLD,
                          objectives={"rmse": RMSE_OBJECTIVE}, alert=None, alert_after=None,
                          drift_windows=1, features=None, categorical_features=None,
                          feature_importance=None)
    monitors.create_monitor(store, ctx, MONITOR, endpoint=MONITORED, config=config,
                            baseline_profile=profile(frame).to_bytes())
    monitors.create_monitor(store, ctx, IDLE_MONITOR, endpoint=MONITORED, config=config,
                            baseline_profile=profile(frame).to_bytes())
    with store.read() as conn:
        row = conn.execute(select(monitor_table).where(monitor_table.c.name == MONITOR)).one()
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for n, scores in enumerate(zip(SIZE_SCORES, VISITS_SCORES, strict=True)):
        start, end = first + timedelta(hours=n), first + timedelta(hours=n + 1)
        features = {name: {"kind": "numeric", "metric": "wasserstein", "drift_score": score,
                           "threshold": THRESHOLD, "drifted": score > THRESHOLD,
                           "distance": score, "importance": None, "rank_score": score,
                           "p_value": None, "missing_rate": 0.0, "findings": [],
                           "drift": None}
                    for name, score in zip(("size", "visits"), scores, strict=True)}
        result = {"rows": 100, "window_start": start.isoformat(),
                  "window_end": end.isoformat(), "findings": [], "features": features,
                  "prediction": None, "objectives": {}, "latency_ms": None,
                  "performance": {"rows": 40, "task": "regression", "rmse": RMSES[n],
                                  "mae": RMSES[n] / 2},
                  "estimated_performance": {
                      "task": "regression", "rows": 100, "confidence": 0.95,
                      "reliable": n < 2, "outside_share": 0.0 if n < 2 else 0.4,
                      "metrics": {"rmse": {
                          "estimate": RMSE_ESTIMATES[n], "lower": RMSE_BANDS[n][0],
                          "upper": RMSE_BANDS[n][1], "reliable": n < 2, "reference": 0.3,
                          "actual": RMSES[n], "covered": True}}},
                  "model_versions": {},
                  "breaches": ["skew"] if scores[0] > THRESHOLD else []}
        monitors.record_run(store, row, start, end, "schedule", None, None, end, result,
                            "succeeded", None)
    _estimating(site, frame, tmp_path_factory.mktemp("sdk"))
    # Training data as a dataset artifact (a Parquet file), offered as a new monitor's
    # baseline by the create form.
    table = tmp_path_factory.mktemp("baseline") / "train.parquet"
    frame.to_parquet(table, index=False)
    blobs = site.live.app.state.shipyard.artifacts
    blob = blobs.put_file(table)
    store.retry_write(lambda conn: records.create_artifact(
        conn, PROJECT, "system.Dataset", TRAINING, blobs.uri(blob.digest),
        digest=blob.digest, size=blob.size, properties={"layout": "file"}))
    # The newest window's requests in the request log: 'size' moved up by 25, 'plan' turned
    # to 'pro' (what the reference-and-current charts read again).
    artifacts = site.live.app.state.shipyard.settings.artifacts
    latest = first + timedelta(hours=len(SIZE_SCORES) - 1)
    RequestLog(root=Path(artifacts)).write([Logged(
        request_id=f"window-{i}", time=(latest + timedelta(minutes=i)).timestamp(),
        project=PROJECT, endpoint=MONITORED, deployed_model_id=f"{MONITORED}:1",
        model_version=1, protocol="vertex", latency_ms=5.0, names=None,
        rows=[{"size": 25.0 + 5 * i + j, "visits": float((5 * i + j) % 7),
               "plan": "pro" if 5 * i + j < 40 else "free"} for j in range(5)],
        predictions=[1.0] * 5) for i in range(10)])


def _estimating(site: Site, frame: pd.DataFrame, home: Path) -> None:
    """A monitor that estimates performance, created with the SDK in remote mode (its
    fitted estimator crosses REST as JSON); a bad estimator is refused naming the field."""
    import shipyard as sy
    from shipyard.monitoring.estimation import fit_estimator
    from shipyard.sdk import session

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"size": rng.uniform(0, 50, 800),
                              "visits": rng.integers(0, 7, 800).astype(float)})
    reference["predicted"] = 2 * reference["size"]
    reference["sales"] = reference["predicted"] + rng.normal(size=800)
    estimator = fit_estimator(reference, task="regression", target="sales",
                              prediction="predicted", features=["size", "visits"], n_models=2)
    sy.init(home=home, uri=site.live.url, project=PROJECT, token=site.live.token)
    try:
        created = sy.create_monitor(MONITORED, frame, name=ESTIMATING,
                                    performance_estimator=estimator)
    finally:
        session.reset()
    outline = created.config["performance_estimation"]
    assert outline["task"] == "regression" and outline["metrics"] == ["mae", "rmse"]
    assert outline["features"] == ["size", "visits"]
    answer = httpx.post(f"{site.live.url}/api/v1/projects/{PROJECT}/monitors", json={
        "name": "refused", "endpoint": MONITORED,
        "baseline_profile": base64.b64encode(profile(frame).to_bytes()).decode(),
        "performance_estimator": "{not json"},
        headers={"Authorization": f"Bearer {site.live.token}"})
    assert answer.status_code == 400 and "performance_estimator" in answer.text


def _monitors(page: Any, site: Site) -> None:
    assert page.locator("#monitors tbody tr").count() == 3
    row = page.locator("#monitors tbody tr", has_text=MONITOR)
    assert row.locator("td").all_inner_texts()[:3] == [MONITOR, MONITORED, "active"]
    assert row.locator("td").last.inner_text() == "1"  # open alerts
    alert = page.locator("#alerts tbody tr")
    assert alert.count() == 1  # raised when 'size' first crossed; still open, not raised again
    assert alert.locator(".badge").all_inner_texts() == ["size"]
    assert alert.locator(".state").inner_text() == "open"


def _monitor(page: Any, site: Site) -> None:
    page.locator("#drift .chart .main-svg").nth(1).wait_for()  # both charts drawn
    # The most drifted feature first, marked; each chart its scores against the threshold.
    assert page.locator("#drift .chart").evaluate_all(
        "els => els.map(e => e.dataset.feature)") == ["size", "visits"]
    assert page.locator("#drift .chart.drifted").count() == 1
    spec = json.loads(page.locator("script#feature-0").text_content())
    score, limit = spec["traces"][0], spec["traces"][-1]
    assert score["y"] == list(SIZE_SCORES) and limit["y"] == [THRESHOLD] * 3
    assert score["x"][0] == "2026-01-05 10:00:00"  # the first window's end, UTC
    assert page.locator("#monitor-runs tbody tr").count() == 3
    assert page.locator("#alerts tbody tr").count() == 1
    # Reference against current: the drift charts' features first, then the others.
    page.locator('#distributions .chart[data-feature="plan"] .main-svg').first.wait_for()
    assert page.locator("#distributions .chart").evaluate_all(
        "els => els.map(e => e.dataset.feature)") == ["size", "visits", "plan"]
    assert page.locator("#no-current").count() == 0
    size = json.loads(page.locator("script#distribution-0").text_content())
    reference, current = size["traces"]
    # 20 equal bins over 0..74 (baseline 0..49, the window 25..74), 3.7 wide: the first
    # holds 0, 1, 2, 3 of the baseline's 50 values; the last 71..74 of the window's 50.
    assert len(reference["x"]) == 20 and reference["width"] == pytest.approx(3.7)
    # The window drawn as an outline over the baseline's bars: nothing overlaid blends
    # into a colour the legend lacks.
    assert (reference["type"], current["type"]) == ("bar", "scatter")
    assert current["line"]["shape"] == "hvh" and size["layout"]["barmode"] == "group"
    assert reference["y"][0] == pytest.approx(0.08) and current["y"][0] == 0
    assert current["y"][-1] == pytest.approx(0.08) and reference["y"][-1] == 0
    assert sum(reference["y"]) == pytest.approx(1) and sum(current["y"]) == pytest.approx(1)
    # 'visits' holds the whole numbers 0..6: one bar each (0 is 8 of the 50 rows, the
    # others 7), the same in the window.
    visits = json.loads(page.locator("script#distribution-1").text_content())
    assert visits["traces"][0]["x"] == [0, 1, 2, 3, 4, 5, 6]
    for trace in visits["traces"]:
        assert trace["y"] == pytest.approx([0.16] + [0.14] * 6)
    plan = json.loads(page.locator("script#distribution-2").text_content())
    shares = [dict(zip(t["x"], t["y"], strict=True)) for t in plan["traces"]]
    assert shares == [{"free": 0.6, "pro": 0.4}, {"free": 0.2, "pro": 0.8}]
    # Performance measured from ground truth, against the objective.
    page.locator("#performance-card .chart .main-svg").first.wait_for()
    perf = json.loads(page.locator("script#performance").text_content())
    names = [t["name"] for t in perf["traces"]]
    assert names == ["rmse band (lower)", "rmse estimate band", "rmse (estimated)",
                     "rmse (actual)", "rmse objective", "mae (actual)"]
    lower, upper, estimated, actual, objective = perf["traces"][:5]
    assert lower["y"] == [b[0] for b in RMSE_BANDS] and upper["fill"] == "tonexty"
    assert upper["y"] == [b[1] for b in RMSE_BANDS]
    assert estimated["y"] == list(RMSE_ESTIMATES)
    assert estimated["marker"]["symbol"] == ["circle", "circle", "x-open"]  # unreliable
    assert actual["y"] == list(RMSES)
    assert objective["y"] == [RMSE_OBJECTIVE] * 2
    assert page.locator("#performance-card p.legend", has_text="Estimated").count() == 1


def _estimating_monitor(page: Any, site: Site) -> None:
    # Not run yet: what it estimates, and the empty state (neither estimated nor measured).
    assert page.locator("#estimation").inner_text() == \
        "mae, rmse without labels (regression, fitted on 800 reference rows)"
    assert page.locator("#performance-card .chart").count() == 0
    assert page.locator("#performance-card .empty",
                        has_text="estimates mae and rmse without labels").count() == 1


def _idle_monitor(page: Any, site: Site) -> None:
    assert page.locator("#drift .chart").count() == 0
    assert page.locator("#drift .empty", has_text="No judged window yet").count() == 1
    assert page.locator("#no-current", has_text="baseline alone").count() == 1
    page.locator('#distributions .chart[data-feature="plan"] .main-svg').first.wait_for()
    spec = json.loads(page.locator("script#distribution-0").text_content())
    assert [t["name"] for t in spec["traces"]] == ["reference (baseline)"]
    assert page.locator("#performance-card .empty", has_text="ground truth").count() == 1
    assert page.locator("#monitor-runs").count() == 0


def _overview(page: Any, site: Site) -> None:
    assert page.locator(".count").count() == 3
    assert "3" in page.locator(".count").first.inner_text()  # runs
    assert page.locator("text=Recent pipeline runs").count() == 1


def _runs(page: Any, site: Site) -> None:
    assert page.locator("#runs tbody tr").count() == 3
    assert page.locator("#runs thead th", has_text="loss").count() == 1
    # Pick two runs and compare them.
    boxes = page.locator("#runs input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.click("button:has-text('Compare selected runs')")
    page.wait_for_url("**/runs/compare?run=*")
    assert page.locator("#param-diff thead th a").count() == 2
    page.go_back()


def _runs_filtered(page: Any, site: Site) -> None:
    assert page.locator("#runs tbody tr").count() == 1
    assert page.locator("#runs tbody", has_text="lr-0").count() == 1


def _run(page: Any, site: Site) -> None:
    assert page.locator("#params", has_text="learning_rate").count() == 1
    assert page.locator("#metrics", has_text="loss").count() == 1
    # plotly drew the loss curve (a chart per metric with more than one step)
    page.wait_for_selector(".chart .main-svg")
    assert page.locator(".chart").count() == 1


def _compare(page: Any, site: Site) -> None:
    assert page.locator("#param-diff tr.differs").count() == 2  # depth and learning_rate
    assert page.locator("#metric-diff tbody tr").count() == 2  # loss and rmse
    page.wait_for_selector(".chart .main-svg")
    assert page.locator(".chart").count() == 1  # loss: logged at several steps
    assert page.locator(".chart .legend .traces").count() == 3  # one line per run


def _pipelines(page: Any, site: Site) -> None:
    assert page.locator("#pipeline-runs tbody tr").count() == 3


def _pipeline_run(page: Any, site: Site) -> None:
    nodes = page.locator("#dag a.node")
    assert nodes.count() == 3
    assert page.locator("#dag path.edge").count() == 2
    assert page.locator('#dag a.node[data-state="SUCCEEDED"]').count() == 3


def _cached_run(page: Any, site: Site) -> None:
    assert page.locator("#dag text", has_text="cached").count() == 3
    assert page.locator("#log pre.log").count() == 0


def _failed_run(page: Any, site: Site) -> None:
    assert page.locator('#dag a.node[data-state="FAILED"]').count() == 1
    assert page.locator("#tasks", has_text="fails on purpose").count() == 1


def _task_log(page: Any, site: Site) -> None:
    assert page.locator("#log h2", has_text="produce").count() == 1


def _lineage(page: Any, site: Site) -> None:
    assert page.locator("#artifacts tbody tr").count() >= 4


def _lineage_graph(page: Any, site: Site) -> None:
    # The dataset the two pipeline runs share appears once, with its consumers.
    assert page.locator("#lineage .root").count() == 1
    # Each step of the two runs is one node: the rerun was served from the cache.
    assert page.locator('#lineage [data-kind="execution"]').count() == 3
    assert page.locator('#lineage [data-kind="execution"][data-count="2"]').count() == 3
    assert page.locator("#lineage path.edge").count() >= 2
    # An execution's box leads to that step in every run.
    page.locator('#lineage [data-kind="execution"]').first.click()
    page.wait_for_url("**/executions?name=demo-pipeline*")
    assert page.locator("#executions tbody tr").count() == 2
    page.go_back()


def _executions(page: Any, site: Site) -> None:
    rows = page.locator("#executions tbody tr")
    types = page.locator("#executions tbody td:nth-child(2)").all_inner_texts()
    # The three tracking runs, and each pipeline task of the three pipeline runs.
    assert types.count("run") == 3 and types.count("pipeline_task") == 8, types
    failed = rows.filter(has_text="failing-pipeline/fail")
    assert failed.locator(".state").inner_text() == "FAILED"
    assert "fails on purpose" in failed.inner_text()
    # Newest first.
    times = rows.locator("td:nth-child(4) time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))")
    assert times == sorted(times, reverse=True)


def _executions_step(page: Any, site: Site) -> None:
    # One step across its runs: run, then served from the cache by the rerun.
    rows = page.locator("#executions tbody tr")
    assert rows.count() == 2
    assert rows.locator(".state").all_inner_texts() == ["CACHED", "COMPLETE"]
    demo = site.demo
    links = rows.locator("td:nth-child(6) a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))")
    assert [link.split("?")[0].rsplit("/", 1)[-1] for link in links] == [
        demo.cached_run.id, demo.pipeline_run.id]
    assert all(link.endswith("?task=produce") for link in links)
    # Both wrote the same dataset (the cache's): each a link into its lineage graph.
    wrote = rows.locator("td:nth-child(8) a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))")
    assert wrote == [f"/console/projects/{PROJECT}/lineage/{demo.dataset_artifact}"] * 2
    page.locator("td:nth-child(8) a").first.click()
    page.wait_for_url(f"**/lineage/{demo.dataset_artifact}")
    assert page.locator("#lineage .root").count() == 1
    page.go_back()


def _executions_paged(page: Any, site: Site) -> None:
    # Three a page, by the page token: each page older than the one before, none twice.
    seen: list[str] = []
    while True:
        ids = page.locator("#executions tbody tr").evaluate_all(
            "els => els.map(e => e.dataset.execution)")
        assert 1 <= len(ids) <= 3
        seen.extend(ids)
        if page.locator("#older").count() == 0:
            break
        page.click("#older")
        page.wait_for_load_state()
    assert len(seen) == len(set(seen)) == 11  # 3 runs and 8 tasks
    page.click("#newest")
    page.wait_for_url("**/executions?*limit=3")


def _models(page: Any, site: Site) -> None:
    assert page.locator("#models tbody tr").count() == 1
    assert page.locator("#models .badge", has_text="production").count() == 1


def _model(page: Any, site: Site) -> None:
    assert page.locator("#versions tbody tr").count() == 2
    assert page.locator("#alias-history tbody tr").count() == 2
    assert page.locator("#alias-history", has_text="promoted").count() == 1
    assert page.locator("#signature tbody tr").count() == 2
    page.wait_for_selector(".chart .main-svg")


def _events(page: Any, site: Site) -> None:
    topics = page.locator("#topics tbody tr td:first-child").all_inner_texts()
    # The demo's topic, and the built-in ones its triggers subscribe to.
    assert {TOPIC, "model-version-registered", "model-alias-moved"} <= set(topics)
    row = page.locator(f'#subscriptions tr[data-subscription="{SUBSCRIPTION}"]')
    assert row.locator("td").all_inner_texts()[2:5] == ["2", "0", "1"]  # waiting, leased, dead
    assert page.locator("#messages tbody tr", has_text='"what":"demo"').count() == 3
    assert page.locator(f"#dead-{SUBSCRIPTION}").count() == 1
    assert page.locator("#dead-card", has_text="fails on purpose").count() == 1
    # The schedule's next three runs: 03:00 UTC on three days in a row.
    schedule = page.locator(f'#schedules tr[data-schedule="{SCHEDULE}"]')
    runs = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in schedule.locator(
        ".next-run time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")]
    assert len(runs) == 3 and all((r.hour, r.minute) == (3, 0) for r in runs)
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(days=1)] * 2
    assert "run pipeline demo-pipeline" in schedule.inner_text()
    trigger = page.locator(f'#triggers tr[data-trigger="{TRIGGER}"]')
    assert '"model":"lead-scoring"' in trigger.inner_text()
    hook = page.locator(f'#triggers tr[data-trigger="{HOOK}"]')
    assert "webhook https://hooks.example.com/deploy" in hook.inner_text()
    assert "paused" in hook.inner_text()
    assert SECRET not in page.content()  # neither the URL's query nor the header


def _events_topic(page: Any, site: Site) -> None:
    assert page.locator("#messages tbody tr").count() == 3
    assert set(page.locator("#messages tbody td:nth-child(2)").all_inner_texts()) == {TOPIC}


def pages(site: Site) -> list[tuple[str, str, Check]]:
    demo = site.demo
    run = f"/pipelines/{demo.pipeline_run.id}"
    return [
        ("overview", "", _overview),
        ("runs", "/runs", _runs),
        ("runs-filtered", "/runs?filter=params.learning_rate+%3D+%270.1%27"
                          f"&experiment={EXPERIMENT}&order=metrics.rmse+DESC", _runs_filtered),
        ("run", f"/runs/{demo.run_ids[0]}", _run),
        ("compare", "/runs/compare?" + "&".join(f"run={r}" for r in demo.run_ids), _compare),
        ("pipelines", "/pipelines", _pipelines),
        ("pipeline-run", run, _pipeline_run),
        ("pipeline-run-cached", f"/pipelines/{demo.cached_run.id}", _cached_run),
        ("pipeline-run-failed", f"/pipelines/{demo.failed_run.id}", _failed_run),
        ("task-log", f"{run}?task=produce", _task_log),
        ("lineage", "/lineage", _lineage),
        ("lineage-graph", f"/lineage/{demo.dataset_artifact}", _lineage_graph),
        ("executions", "/executions", _executions),
        ("executions-step", "/executions?type=pipeline_task&name=demo-pipeline%2Fproduce",
         _executions_step),
        ("executions-paged", "/executions?limit=3", _executions_paged),
        ("models", "/models", _models),
        ("model", f"/models/{MODEL}", _model),
        ("monitors", "/monitors", _monitors),
        ("monitor", f"/monitors/{MONITOR}", _monitor),
        ("monitor-idle", f"/monitors/{IDLE_MONITOR}", _idle_monitor),
        ("monitor-estimating", f"/monitors/{ESTIMATING}", _estimating_monitor),
        ("events", "/events", _events),
        ("events-topic", f"/events?topic={TOPIC}", _events_topic),
    ]


def test_every_page_loads_cleanly_with_its_key_elements(browser: Any, site: Site) -> None:
    context = admin_context(browser, site)
    try:
        for name, path, check in pages(site):
            page = context.new_page()
            watch = Watch()
            watch.attach(page)
            page.goto(site.base + path)  # waits for the load event: scripts have run
            check(page, site)
            page.screenshot(path=str(site.screenshots / f"{name}.png"), full_page=True)
            assert not watch.problems, f"{name}: {watch.problems}"
            page.close()
    finally:
        context.close()


def test_a_viewer_sees_pages_but_no_enabled_button(browser: Any, site: Site) -> None:
    context = viewer_context(browser, site)
    try:
        for name, path, _ in pages(site):
            page = context.new_page()
            watch = Watch()
            watch.attach(page)
            page.goto(site.base + path)  # waits for the load event: scripts have run
            assert not watch.problems, f"{name}: {watch.problems}"
            assert page.locator("button.action:enabled").count() == 0, name
            # Retry and Cancel; Pause and Run now; each schedule's and trigger's toggle and
            # the two create forms; the create-monitor form.
            disabled = {"pipeline-run": 2, "monitor": 2, "events": 5, "monitors": 1}
            if name in disabled:
                assert page.locator("button.action:disabled").count() == disabled[name], name
                page.screenshot(path=str(site.screenshots / f"viewer-{name}.png"),
                                full_page=True)
            page.close()
        # Pressing anyway (a form posted by hand) is refused by the policy table.
        page = context.new_page()
        page.goto(site.base + f"/pipelines/{site.demo.pipeline_run.id}")
        status = page.evaluate(_POST_FORM, {"url": f"/console/projects/{PROJECT}/pipelines/"
                                                   f"{site.demo.pipeline_run.id}/retry",
                                            "token": page.locator(
                                                "input[name=csrf_token]").first.input_value()})
        assert status == 403
    finally:
        context.close()


# Posts a form from the page (same origin, with the session cookie), as a forged or
# hand-made submission would; answers the status.
_POST_FORM = """async ({url, token}) => {
  const form = new FormData();
  if (token !== null) form.append("csrf_token", token);
  const response = await fetch(url, {method: "POST", body: form, redirect: "manual"});
  return response.status;
}"""


def test_forms_refuse_a_post_without_the_sessions_csrf_token(browser: Any, site: Site
                                                             ) -> None:
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        page.goto(site.base + f"/pipelines/{site.demo.failed_run.id}")
        assert page.locator("button.action:enabled").count() == 1  # Retry; Cancel is not
        url = f"/console/projects/{PROJECT}/pipelines/{site.demo.failed_run.id}/retry"
        for token in (None, "0" * 64, "forged"):
            assert page.evaluate(_POST_FORM, {"url": url, "token": token}) == 400
        assert _pipeline_state(site) == "FAILED"
        # The logout form too: a forged one does not end the session.
        assert page.evaluate(_POST_FORM, {"url": "/console/logout", "token": "forged"}) == 400
        page.goto(site.base)
        assert page.url == site.base
        # The login form needs the token its page set in a cookie of its own.
        anonymous = browser.new_context()
        try:
            other = anonymous.new_page()
            other.goto(site.live.url + "/console/login")
            status = other.evaluate(_POST_FORM, {"url": "/console/login", "token": "forged"})
            assert status == 400
        finally:
            anonymous.close()
    finally:
        context.close()


def test_the_login_link_works_once(browser: Any, site: Site) -> None:
    link = site.login_link()
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = first.new_page()
        page.goto(link)
        assert page.url == site.base
        cookie = next(c for c in first.cookies() if c["name"] == "shipyard_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        again = second.new_page()
        response = again.goto(link)
        assert response is not None and response.status == 401
        assert again.locator(".error", has_text="invalid, used or expired").count() == 1
        again.screenshot(path=str(site.screenshots / "used-login-link.png"))
        assert not second.cookies()
        again.goto(site.base)
        assert "/console/login" in again.url
    finally:
        first.close()
        second.close()


def test_a_wrong_password_shows_the_form_again_and_logout_ends_the_session(
        browser: Any, site: Site) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.live.url + "/console/login")
        page.fill("input[name=name]", "vera")
        page.fill("input[name=password]", "not the password at all")
        page.click("button[type=submit]")
        assert page.locator(".error", has_text="invalid user name or password").count() == 1
        page.screenshot(path=str(site.screenshots / "login-refused.png"))
    finally:
        context.close()
    context = viewer_context(browser, site)
    try:
        page = context.new_page()
        page.goto(site.base)
        token = next(c["value"] for c in context.cookies() if c["name"] == "shipyard_session")
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/console/login")
        page.goto(site.base)
        assert "/console/login" in page.url
        # The session's token was revoked, not only forgotten by this browser.
        answer = httpx.get(site.live.url + "/api/v1/whoami",
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    finally:
        context.close()


def test_keyboard_reaches_the_sections(browser: Any, site: Site) -> None:
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        page.goto(site.base)
        page.keyboard.press("Tab")  # the brand link
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")  # Overview, then Runs
        assert page.evaluate("document.activeElement.textContent") == "Runs"
        page.keyboard.press("Enter")
        page.wait_for_url("**/runs")
    finally:
        context.close()


def test_the_admin_page_lists_users_tokens_grants_and_pages_the_audit_log(
        browser: Any, site: Site) -> None:
    store = site.live.app.state.shipyard.store
    ctx = RequestContext(project=PROJECT, actor="auditor")
    store.retry_write(lambda conn: [audit.record(conn, ctx, "console.test", f"things/{n}")
                                    for n in range(60)])
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        page.goto(site.base)
        # The keyboard reaches the Admin section from the top of any page.
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "Admin":
                break
        page.keyboard.press("Enter")
        page.wait_for_url("**/admin")
        users = page.locator("#users tbody td:first-child").all_inner_texts()
        assert {"admin", VIEWER} <= set(users)
        assert page.locator("#grants tbody tr", has_text=VIEWER).locator(
            ".badge").inner_text() == "viewer"
        assert page.locator("#tokens tbody tr", has_text="console").count() >= 1
        # No secret on the page: neither the server's token nor this session's.
        session = next(c["value"] for c in context.cookies()
                       if c["name"] == "shipyard_session")
        html = page.content()
        assert site.live.token not in html and session not in html
        page.screenshot(path=str(site.screenshots / "admin.png"), full_page=True)

        # The audit log, filtered from the keyboard, 50 rows a page, newest first.
        page.focus("#action")
        page.keyboard.type("console.test")
        page.keyboard.press("Enter")
        page.wait_for_url("**action=console.test**")
        first = [int(t) for t in page.locator("#audit tbody td:first-child").all_inner_texts()]
        assert len(first) == 50 and first == sorted(first, reverse=True)
        assert page.locator("#audit tbody", has_text="things/59").count() == 1
        page.click("#older")
        page.wait_for_url("**before=**")
        older = [int(t) for t in page.locator("#audit tbody td:first-child").all_inner_texts()]
        assert len(older) == 10 and max(older) < min(first)
        assert page.locator("#older").count() == 0
        page.screenshot(path=str(site.screenshots / "admin-audit-older.png"), full_page=True)
        assert not watch.problems, watch.problems
    finally:
        context.close()
    # A viewer has no Admin link and is refused the page as any route.
    context = viewer_context(browser, site)
    try:
        page = context.new_page()
        page.goto(site.base)
        assert page.locator("header nav a", has_text="Events").count() == 1
        assert page.locator("header nav a", has_text="Admin").count() == 0
        response = page.goto(site.base + "/admin")
        assert response is not None and response.status == 403
        assert page.locator("main", has_text="admin").count() == 1
        assert page.locator("#users").count() == 0
        page.screenshot(path=str(site.screenshots / "viewer-admin-refused.png"))
    finally:
        context.close()


def test_buttons_create_pause_resume_and_run_monitors_schedules_and_triggers(
        browser: Any, site: Site) -> None:
    # After the page loops: it adds a monitor, a run, a schedule and a trigger.
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        # A monitor from the create form, its baseline profiled from the dataset artifact.
        page.goto(site.base + "/monitors")
        form = page.locator("#create-monitor")
        form.locator("input[name=name]").fill("created-monitor")
        form.locator("select[name=endpoint]").select_option(MONITORED)
        dataset = form.locator("select[name=baseline] option", has_text=TRAINING)
        form.locator("select[name=baseline]").select_option(dataset.get_attribute("value"))
        form.locator("input[name=features]").fill("size, plan")
        form.locator("input[name=interval]").fill("30m")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/monitors/created-monitor")
        assert page.locator(".facts", has_text="size, plan").count() == 1
        assert page.locator(".facts", has_text="30 min").count() == 1
        page.screenshot(path=str(site.screenshots / "monitor-created.png"), full_page=True)
        store = site.live.app.state.shipyard.store
        created = monitors.get_monitor(store, PROJECT, "created-monitor")
        assert created.features == ["size", "plan"] and created.baseline_uri
        # Pause, resume, run now.
        page.click("#pause")
        page.wait_for_selector("h1 .state:has-text('paused')")
        assert monitors.get_monitor(store, PROJECT, "created-monitor").state == "paused"
        page.click("#resume")
        page.wait_for_selector("h1 .state:has-text('active')")
        page.click("#run-now")
        page.wait_for_selector("#monitor-runs tbody tr")
        assert page.locator("#monitor-runs tbody tr").count() == 1
        assert page.locator("#monitor-runs tbody tr td").nth(1).inner_text() == "manual"
        assert not watch.problems, watch.problems
        # A forged post (no CSRF token) changes nothing.
        url = f"/console/projects/{PROJECT}/monitors/created-monitor/pause"
        assert page.evaluate(_POST_FORM, {"url": url, "token": None}) == 400
        page.close()  # (its watch saw that 400, which was the point)
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        assert monitors.get_monitor(store, PROJECT, "created-monitor").state == "active"

        # A schedule: created, paused, resumed.
        page.goto(site.base + "/events")
        page.click("#new-schedule summary")
        form = page.locator("#create-schedule")
        form.locator("input[name=name]").fill("weekly-report")
        form.locator("input[name=cron]").fill("0 6 * * 1")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/events#schedules-card")
        row = page.locator('#schedules tr[data-schedule="weekly-report"]')
        assert "run pipeline" in row.inner_text() and "active" in row.inner_text()
        assert row.locator(".next-run").count() == 3
        row.locator("button", has_text="Pause").click()
        page.wait_for_selector('#schedules tr[data-schedule="weekly-report"] .state-paused')
        assert row.locator(".next-run").count() == 0
        row.locator("button", has_text="Resume").click()
        page.wait_for_selector('#schedules tr[data-schedule="weekly-report"] .state-active')
        # A trigger: created with a filter, disabled, enabled.
        page.click("#new-trigger summary")
        form = page.locator("#create-trigger")
        form.locator("input[name=name]").fill("retrain-on-drift")
        form.locator("input[name=topic]").fill("monitor-alert-raised")
        form.locator("textarea[name=filter]").fill(json.dumps({"monitor": MONITOR}))
        form.locator("input[name=cooldown_seconds]").fill("3600")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/events#triggers-card")
        row = page.locator('#triggers tr[data-trigger="retrain-on-drift"]')
        assert f'"monitor":"{MONITOR}"' in row.inner_text() and "1 h" in row.inner_text()
        assert "run pipeline demo-pipeline" in row.inner_text()  # the one that succeeded
        row.locator("button", has_text="Disable").click()
        page.wait_for_selector('#triggers tr[data-trigger="retrain-on-drift"] .state-paused')
        row.locator("button", has_text="Enable").click()
        page.wait_for_selector('#triggers tr[data-trigger="retrain-on-drift"] .state-active')
        page.screenshot(path=str(site.screenshots / "events-created.png"), full_page=True)
        assert not watch.problems, watch.problems
        # Bad input answers a page naming the field; nothing is created.
        page.click("#new-schedule summary")
        form = page.locator("#create-schedule")
        form.locator("input[name=name]").fill("broken")
        form.locator("input[name=cron]").fill("every tuesday")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            form.locator("button[type=submit]").click()
        assert answer.value.status == 400
        assert page.locator("main", has_text="cron").count() == 1
        page.screenshot(path=str(site.screenshots / "schedule-refused.png"), full_page=True)
        assert [s.name for s in scheduler.list_schedules(store, PROJECT)] == [
            SCHEDULE, "weekly-report"]
    finally:
        context.close()


# Last: it changes the demo's failed run.
def test_retry_and_cancel_buttons_queue_and_cancel_a_run(browser: Any, site: Site) -> None:
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        page.goto(site.base + f"/pipelines/{site.demo.failed_run.id}")
        page.click("button:has-text('Retry')")
        # Retried in place; no worker runs in this server, so it waits in the queue.
        page.wait_for_selector("h1 .state:has-text('QUEUED')")
        assert page.locator("button.action:enabled", has_text="Retry").count() == 0
        page.screenshot(path=str(site.screenshots / "retried.png"), full_page=True)
        page.click("button:has-text('Cancel')")
        page.wait_for_selector("h1 .state:has-text('CANCELLED')")
        # Retried again, the page follows the run live: cancelled elsewhere (the API), it
        # shows the new state and buttons without a reload.
        page.click("button:has-text('Retry')")
        page.wait_for_selector("h1 .state:has-text('QUEUED')")
        page.evaluate("window.stillTheSamePage = true")
        answer = httpx.post(f"{site.live.url}/api/v1/projects/{PROJECT}/pipelines/runs/"
                            f"{site.demo.failed_run.id}/cancel", json={}, timeout=30,
                            headers={"Authorization": f"Bearer {site.live.token}"})
        assert answer.status_code == 200, answer.text
        page.wait_for_selector("h1 .state:has-text('CANCELLED')", timeout=20_000)
        page.wait_for_selector("#retry:enabled")
        assert page.locator("#cancel:disabled").count() == 1
        assert page.evaluate("window.stillTheSamePage") is True
        assert page.locator("#live-note").inner_text() == "The run ended."
        page.screenshot(path=str(site.screenshots / "cancelled-live.png"), full_page=True)
        assert not watch.problems, watch.problems
    finally:
        context.close()


def _pipeline_state(site: Site) -> str:
    store = site.live.app.state.shipyard.store
    return get_pipeline_run(store, PROJECT, site.demo.failed_run.id).state


@pytest.fixture(autouse=True)
def _report_screenshots(site: Site, request: pytest.FixtureRequest) -> None:
    request.node.user_properties.append(("screenshots", str(site.screenshots)))
