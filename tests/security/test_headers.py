"""Host, Origin and Content-Type checks that protect a server on localhost."""

from __future__ import annotations

import pytest

from shipyard.security.headers import (
    content_type_allowed,
    host_allowed,
    mutation_allowed,
    split_host,
)


@pytest.mark.parametrize(
    "host", ["attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example", ""]
)
def test_cve_2018_5702_dns_rebinding_foreign_host_header_is_refused(host: str) -> None:
    # Transmission's RPC (CVE-2018-5702) trusted any Host, so a rebound attacker domain
    # could drive a localhost server from a browser.
    assert not host_allowed(host)
    assert not host_allowed(None)


def test_loopback_and_configured_hosts_are_accepted() -> None:
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST."):
        assert host_allowed(host)
    assert host_allowed("ml.example.com", ["ml.example.com"])
    assert host_allowed("a.example.com:443", ["*.example.com"])
    assert not host_allowed("example.com", ["*.example.com"])
    assert not host_allowed("evil-example.com", ["*.example.com"])


@pytest.mark.parametrize(
    "value", ["user@localhost", "localhost/path", "local host", "[::1", "h:99999"]
)
def test_malformed_host_headers_are_refused(value: str) -> None:
    assert split_host(value) is None


def test_cross_site_mutations_are_refused() -> None:
    same = {"host_header": "localhost:8080", "scheme": "http"}
    assert mutation_allowed("POST", origin="http://localhost:8080", **same)
    assert mutation_allowed("POST", origin=None, **same)  # SDK, CLI, curl
    assert mutation_allowed("GET", origin="https://evil.example", **same)
    assert not mutation_allowed("POST", origin="https://evil.example", **same)
    assert not mutation_allowed("DELETE", origin="null", **same)
    assert not mutation_allowed("POST", origin="http://localhost:9999", **same)
    assert not mutation_allowed(
        "POST", origin="http://localhost:8080", sec_fetch_site="cross-site", **same
    )
    assert mutation_allowed(
        "POST",
        origin="https://console.example",
        trusted_origins=["https://console.example"],
        **same,
    )


def test_only_json_or_multipart_bodies_may_mutate() -> None:
    assert content_type_allowed("POST", "application/json; charset=utf-8")
    assert content_type_allowed("POST", "application/problem+json")
    assert content_type_allowed("POST", "multipart/form-data; boundary=x")
    for simple in ("text/plain", "application/x-www-form-urlencoded", None):
        assert not content_type_allowed("POST", simple)
    assert content_type_allowed("DELETE", None, has_body=False)
    assert content_type_allowed("GET", "text/plain")
