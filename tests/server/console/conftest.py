"""One real server over the demo project (``demo.py``) per module, and Debian's chromium
driven by Playwright. Screenshots go to the test's temporary folder (``screenshots``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.security import service as identity
from shipyard.server.api.identity import issue_login_link
from tests.server.console.demo import PROJECT, Demo, fill
from tests.server.live import LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
VIEWER, VIEWER_PASSWORD = "vera", "a viewer's long password"


@dataclass
class Site:
    live: LiveServer
    demo: Demo
    screenshots: Path

    @property
    def base(self) -> str:
        return f"{self.live.url}/console/projects/{PROJECT}"

    def login_link(self) -> str:
        return issue_login_link(self.live.app.state.shipyard, base_url=self.live.url)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console")
    settings = Settings.resolve(home=tmp / "home", uri=f"sqlite:///{tmp / 'db.sqlite'}",
                                artifacts=str(tmp / "blobs"), environ={})
    demo = fill(settings, tmp)
    with live_server(settings, worker=False) as live:
        store = live.app.state.shipyard.store
        admin = RequestContext(project="", actor="admin")
        identity.create_principal(store, admin, VIEWER, password=VIEWER_PASSWORD)
        identity.grant(store, admin, VIEWER, PROJECT, "viewer")
        shots = tmp / "screenshots"
        shots.mkdir()
        yield Site(live, demo, shots)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watch:
    """What went wrong on a page: console errors, failed requests, error responses."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)


def admin_context(browser: Any, site: Site) -> Any:
    """A browser context signed in through a one-time login link."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(site.login_link())
    assert page.url == site.base, page.url
    page.close()
    return context


@contextmanager
def watched_admin_page(browser: Any, site: Site) -> Iterator[tuple[Any, Watch]]:
    """A new page signed in as the admin with a ``Watch`` on it; its context is closed
    afterwards."""
    context = admin_context(browser, site)
    try:
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        yield page, watch
    finally:
        context.close()


def viewer_context(browser: Any, site: Site) -> Any:
    """A browser context signed in through the user name and password form."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(site.base)
    assert "/console/login" in page.url
    page.fill("input[name=name]", VIEWER)
    page.fill("input[name=password]", VIEWER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site.base)
    page.close()
    return context
