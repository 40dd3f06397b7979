# ruff: noqa: F811 - the fixtures imported from tests.server.conftest are parameters here
"""``/docs`` (Swagger UI) carries a content security policy that allows exactly what the page
loads: its script and stylesheet from the CDN, its one inline script by hash, the spec and
"Try it out" requests to this origin; nothing else, and no framing."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx

from tests.server.conftest import anon, live, live_uri  # noqa: F401


def _directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_docs_has_a_strict_content_security_policy(anon: httpx.Client) -> None:
    response = anon.get("/docs")
    assert response.status_code == 200
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    # Scripts: the bundle's exact URL and the page's inline script by hash, never any
    # inline script or anything else the CDN hosts.
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    sources = re.findall(r'<script src="([^"]+)"', response.text)
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    assert sources and inline
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
              for s in inline]
    assert sorted(policy["script-src"]) == sorted(sources + hashes)
    stylesheets = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', response.text)
    assert stylesheets
    assert set(stylesheets) <= set(policy["style-src"])
    for word in policy["img-src"]:
        assert word in ("'self'", "data:") or word.startswith("https://")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_api_keeps_its_own_policy(anon: httpx.Client) -> None:
    response = anon.get("/api/v1/health")
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'")
