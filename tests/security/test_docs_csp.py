# ruff: noqa: F811 - the fixtures imported from tests.server.conftest are parameters here
"""``/docs`` (Swagger UI) works offline: its script, stylesheet and icon are served by the
server itself (from the swagger-ui-bundle-v2 package), and its content security policy
allows exactly that: this origin, its one inline script by hash, the spec and "Try it out"
requests to this origin; nothing from elsewhere, and no framing."""

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
    # Scripts: this origin and the page's inline script by hash; never any other inline
    # script, eval, or another host.
    assert "'unsafe-eval'" not in policy["script-src"]
    sources = re.findall(r'<script src="([^"]+)"', response.text)
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    assert sources and inline
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
              for s in inline]
    assert sorted(policy["script-src"]) == sorted(["'self'", *hashes])
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert "http" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_api_keeps_its_own_policy(anon: httpx.Client) -> None:
    response = anon.get("/api/v1/health")
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'")


def _referenced(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)


def test_docs_references_only_same_origin_assets_and_they_are_served(
    anon: httpx.Client,
) -> None:
    page = anon.get("/docs").text
    assert "http://" not in page and "https://" not in page  # no CDN, no other host
    assets = _referenced(page)
    assert "/openapi.json" in assets
    files = [a for a in assets if a != "/openapi.json"]
    assert {a.rsplit(".", 1)[1] for a in files} == {"js", "css", "png"}
    expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
    for asset in files:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        served = anon.get(asset)  # public: the page loads them before anyone signs in
        assert served.status_code == 200, (asset, served.status_code)
        assert served.headers["content-type"].startswith(expected[asset.rsplit(".", 1)[1]])
        assert served.headers["x-content-type-options"] == "nosniff"
        assert len(served.content) > 500
    bundle = anon.get(next(a for a in files if a.endswith(".js"))).text
    assert "SwaggerUIBundle" in bundle


def test_only_the_listed_swagger_files_are_served(anon: httpx.Client) -> None:
    for name in ("index.html", "swagger-ui.js.map", "..%2F__init__.py", "%2e%2e"):
        response = anon.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"].startswith("application/problem+json")
