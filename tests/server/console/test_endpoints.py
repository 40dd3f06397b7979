"""The console's endpoint pages in a real browser: the split, the replicas, the traffic form
(refused unless it adds up to 100, in the page and on the server), a test prediction, and a
viewer who sees it all with every button disabled.

The demo's model is a linear regression fitted exactly to ``0.5 * size + visits + noise``
with noise 0.3 for version 1 and 0.1 for version 2, so a prediction's expected value is
known from the data, not from the code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.console.conftest import (
    Site,
    Watch,
    admin_context,
    viewer_context,
    watched_admin_page,
)
from tests.server.console.demo import MODEL, PROJECT

ENDPOINT = "scoring"
API = f"/api/v1/projects/{PROJECT}/endpoints"


@pytest.fixture(scope="module")
def served(site: Site) -> Iterator[Site]:
    """``scoring`` serving both demo versions, 70/30, with a replica each."""
    with httpx.Client(base_url=site.live.url, timeout=120,
                      headers={"Authorization": f"Bearer {site.live.token}"}) as api:
        assert api.post(API, json={"name": ENDPOINT}).status_code == 200
        for version, share in ((1, 100), (2, 30)):
            answer = api.post(f"{API}/{ENDPOINT}/deployments",
                              json={"model": MODEL, "version": version,
                                    "traffic_percentage": share})
            assert answer.status_code == 200, answer.text
        yield site


def _split(site: Site) -> dict[str, int]:
    answer = httpx.get(f"{site.live.url}{API}/{ENDPOINT}", timeout=30,
                       headers={"Authorization": f"Bearer {site.live.token}"})
    return {d["id"]: d["traffic_percentage"] for d in answer.json()["deployments"]}


_POST_SPLIT = """async ({url, token, shares}) => {
  const form = new FormData();
  form.append("csrf_token", token);
  for (const [id, share] of Object.entries(shares)) form.append("traffic." + id, share);
  const response = await fetch(url, {method: "POST", body: form, redirect: "manual"});
  return [response.status, await response.text()];
}"""


def test_endpoint_pages_show_the_split_replicas_and_where_versions_are_deployed(
        browser: Any, served: Site) -> None:
    with watched_admin_page(browser, served) as (page, watch):
        page.goto(served.base + "/endpoints")
        assert page.locator("#endpoints tbody tr").count() == 1
        shares = page.locator("#endpoints .split .share")
        assert shares.all_inner_texts() == [f"{MODEL}:1 70%", f"{MODEL}:2 30%"]
        page.screenshot(path=str(served.screenshots / "endpoints.png"), full_page=True)

        page.goto(served.base + f"/endpoints/{ENDPOINT}")
        assert page.locator("#deployments tbody tr").count() == 2
        assert page.locator("#replicas tbody tr").count() == 2
        assert page.locator("#replicas .state-ready").count() == 2
        assert page.locator("#traffic-total").inner_text() == "total 100%"
        page.screenshot(path=str(served.screenshots / "endpoint.png"), full_page=True)

        page.goto(served.base + f"/models/{MODEL}")
        deployed = page.locator("#versions td.deployed-on").all_inner_texts()
        assert deployed == [f"{ENDPOINT} (30%)", f"{ENDPOINT} (70%)"]  # newest version first
        assert not watch.problems, watch.problems


def test_the_traffic_form_refuses_a_split_that_does_not_add_up_to_100(
        browser: Any, served: Site) -> None:
    context = admin_context(browser, served)
    try:
        page = context.new_page()
        page.goto(served.base + f"/endpoints/{ENDPOINT}")
        page.fill(f'input[name="traffic.{MODEL}:1"]', "50")
        page.fill(f'input[name="traffic.{MODEL}:2"]', "40")
        assert "must add up to 100" in page.locator("#traffic-total").inner_text()
        page.click("#traffic-form button[type=submit]")  # the page does not send it
        assert page.url.endswith(f"/endpoints/{ENDPOINT}")
        assert _split(served) == {f"{MODEL}:1": 70, f"{MODEL}:2": 30}

        # Sent anyway (by hand), the server refuses it and shows the page with the reason.
        token = page.locator("input[name=csrf_token]").first.input_value()
        url = f"/console/projects/{PROJECT}/endpoints/{ENDPOINT}/traffic"
        for shares, says in (({f"{MODEL}:1": "50", f"{MODEL}:2": "40"}, "100"),
                             ({f"{MODEL}:1": "x", f"{MODEL}:2": "40"}, f"{MODEL}:1"),
                             ({f"{MODEL}:1": "60", "nope:9": "40"}, "nope:9")):
            status, text = page.evaluate(_POST_SPLIT, {"url": url, "token": token,
                                                       "shares": shares})
            assert status == 400 and says in text, (shares, status, text[:300])
        assert _split(served) == {f"{MODEL}:1": 70, f"{MODEL}:2": 30}

        page.fill(f'input[name="traffic.{MODEL}:1"]', "100")
        page.fill(f'input[name="traffic.{MODEL}:2"]', "0")
        page.click("#traffic-form button[type=submit]")
        page.wait_for_url("**/endpoints/scoring#traffic")
        assert _split(served) == {f"{MODEL}:1": 100, f"{MODEL}:2": 0}
    finally:
        context.close()


def test_a_test_prediction_shows_the_answer_and_bad_instances_say_why(
        browser: Any, served: Site) -> None:
    context = admin_context(browser, served)
    try:
        page = context.new_page()
        page.goto(served.base + f"/endpoints/{ENDPOINT}")
        # The form starts from a row shaped by the signature.
        assert '"size"' in page.locator("#instances").input_value()
        httpx.put(f"{served.live.url}{API}/{ENDPOINT}/traffic", timeout=30,
                  json={"traffic": {f"{MODEL}:1": 100, f"{MODEL}:2": 0}},
                  headers={"Authorization": f"Bearer {served.live.token}"}
                  ).raise_for_status()
        page.fill("#instances", '[{"size": 10, "visits": 3}, {"size": 4, "visits": 1}]')
        page.click("#predict-form button[type=submit]")
        page.wait_for_selector("#predictions, #predict-error")
        assert page.locator("#predict-error").count() == 0, page.locator(
            "#predict-error").inner_text()
        assert page.locator("#answered-by").inner_text() == f"Answered by {MODEL}:1"
        cells = page.locator("#predictions td.num").all_inner_texts()
        # Version 1: 0.5 * size + visits + 0.3.
        assert [round(float(c), 3) for c in cells] == [8.3, 3.3]
        page.screenshot(path=str(served.screenshots / "endpoint-predicted.png"),
                        full_page=True)

        for text, says in (("not json", "not JSON"), ("[]", "JSON list of rows"),
                           ('[{"size": "big", "visits": 1}]', "size")):
            page.fill("#instances", text)
            page.click("#predict-form button[type=submit]")
            page.wait_for_selector("#predict-error")
            assert says in page.locator("#predict-error").inner_text(), text
            assert page.locator("#instances").input_value() == text  # kept to fix it
    finally:
        context.close()


def test_a_viewer_sees_the_endpoint_with_every_button_disabled(
        browser: Any, served: Site) -> None:
    context = viewer_context(browser, served)
    try:
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        for path in ("/endpoints", f"/endpoints/{ENDPOINT}"):
            page.goto(served.base + path)
            assert page.locator("button.action:enabled").count() == 0, path
        assert page.locator("button.action:disabled").count() == 2
        assert page.locator("input.share-input:enabled").count() == 0
        assert not watch.problems, watch.problems
        # Sent by hand anyway, the policy table refuses it.
        token = page.locator("input[name=csrf_token]").first.input_value()
        status, _ = page.evaluate(_POST_SPLIT, {
            "url": f"/console/projects/{PROJECT}/endpoints/{ENDPOINT}/traffic",
            "token": token, "shares": {f"{MODEL}:1": "0", f"{MODEL}:2": "100"}})
        assert status == 403
    finally:
        context.close()


def test_the_endpoint_page_charts_requests_over_time_and_explains_a_prediction(
        browser: Any, served: Site) -> None:
    """Between two samples of the serving metrics, 5 answered requests and 2 refused ones:
    0.7 requests/s over 10 s and 2/7 of them errors. The explanation of a linear model
    ``0.5 * size + visits`` against the baseline of its input example's medians (size 1,
    visits 1) attributes 0.5 * (10 - 1) = 4.5 to size and 3 - 1 = 2 to visits."""
    history = served.live.app.state.console_history
    headers = {"Authorization": f"Bearer {served.live.token}"}
    start = time.time() + 1000  # ahead of the server's own sampling, which then waits
    history.samples.clear()
    history.sample(now=start)
    with httpx.Client(base_url=served.live.url, timeout=60, headers=headers) as api:
        for n in range(5):
            answer = api.post(f"{API}/{ENDPOINT}:predict",
                              json={"instances": [{"size": n, "visits": 1}]})
            assert answer.status_code == 200, answer.text
        for _ in range(2):
            answer = api.post(f"{API}/{ENDPOINT}:predict",
                              json={"instances": [{"size": "big", "visits": 1}]})
            assert answer.status_code == 400, answer.text
    history.sample(now=start + 10)

    with watched_admin_page(browser, served) as (page, watch):
        page.goto(served.base + "/endpoints")
        replicas = page.locator("#endpoints td.replicas .replica").all_inner_texts()
        assert replicas == [f"{MODEL}:1 ready", f"{MODEL}:2 ready"]
        page.goto(served.base + f"/endpoints/{ENDPOINT}")
        page.locator("#over-time .chart .main-svg").nth(2).wait_for()  # all three drawn
        rate, latency, errors = (_chart(page, f"traffic-{n}") for n in range(3))
        by_name = {t["name"]: t["y"][-1] for t in rate["traces"]}
        assert by_name.pop("total") == 0.7
        assert round(sum(by_name.values()), 6) == 0.7  # each deployment, and refused ones
        assert errors["traces"][0]["y"][-1] == round(100 * 2 / 7, 2)
        p50, p95, p99 = (t["y"][-1] for t in latency["traces"])
        assert 0 < p50 <= p95 <= p99
        page.screenshot(path=str(served.screenshots / "endpoint-over-time.png"),
                        full_page=True)

        page.fill("#instances", '[{"size": 10, "visits": 3}]')
        page.check("#explain")
        page.click("#predict-form button[type=submit]")
        page.wait_for_selector("#explanations .chart .main-svg, #predict-error")
        assert page.locator("#predict-error").count() == 0, page.locator(
            "#predict-error").inner_text()
        bars = _chart(page, "explained-0")["traces"][0]
        assert bars["y"] == ["visits", "size"]  # largest on top
        assert [round(x, 6) for x in bars["x"]] == [2.0, 4.5]
        assert page.locator("#explain").is_checked()  # kept for the next one
        page.locator("#explanations").scroll_into_view_if_needed()
        page.screenshot(path=str(served.screenshots / "endpoint-explained.png"),
                        full_page=True)
        assert not watch.problems, watch.problems


def _chart(page: Any, chart_id: str) -> Any:
    return json.loads(page.locator(f"script#{chart_id}").text_content())


def test_the_endpoint_page_lists_canary_rollouts_with_their_state(
        browser: Any, served: Site) -> None:
    """A rollout started through the API shows on its endpoint's page (state, share, the
    champion it is judged against); an endpoint without one says how to start one."""
    headers = {"Authorization": f"Bearer {served.live.token}"}
    with httpx.Client(base_url=served.live.url, timeout=120, headers=headers) as api:
        assert api.post(API, json={"name": "canaried"}).status_code == 200
        for version, share in ((1, 100), (2, 0)):
            answer = api.post(f"{API}/canaried/deployments", json={
                "model": MODEL, "version": version, "traffic_percentage": share})
            assert answer.status_code == 200, answer.text
        started = api.post(f"{API}/canaried/rollouts", json={
            "deployed_model_id": f"{MODEL}:2", "percent": 15, "after_requests": 500,
            "promote_alias": None})
        assert started.status_code == 200, started.text
    with watched_admin_page(browser, served) as (page, watch):
        page.goto(served.base + "/endpoints/canaried")
        rows = page.locator("#rollouts-table tbody tr")
        assert rows.count() == 1
        cells = rows.first.locator("td").all_inner_texts()
        assert cells[0] == f"{MODEL}:2 vs {MODEL}:1"
        assert cells[1:4] == ["running", "15", "500"]
        assert "judged by the workers after 500 requests" in cells[6]
        page.locator("#rollouts").screenshot(
            path=str(served.screenshots / "endpoint-rollouts.png"))
        page.goto(served.base + f"/endpoints/{ENDPOINT}")
        assert page.locator("#rollouts-table").count() == 0
        assert "shipyard endpoints rollout scoring" in page.locator("#rollouts").inner_text()
        assert not watch.problems, watch.problems
