"""The outbound-URL guard: off by default, canonical addresses only, checked at connect time."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shipyard.security.ssrf import (
    BlockedURL,
    IPAddress,
    OutboundPolicy,
    SafeHttpClient,
    check_url,
    is_public_address,
)

PUBLIC = ipaddress.ip_address("93.184.216.34")
ANY_HOST = OutboundPolicy(allow_hosts=("*",))


def public_resolver(host: str, port: int) -> Sequence[IPAddress]:
    return [PUBLIC]


def teredo(client: str) -> str:
    # 2001:0::/32, server 8.8.8.8, the client's IPv4 stored inverted in the low 32 bits.
    server = int(ipaddress.IPv4Address("8.8.8.8"))
    hidden = ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | hidden))


BLOCKED_LITERALS = [
    "http://127.0.0.1/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.1.1/",  # link-local
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://100.100.100.200/",  # Alibaba metadata
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    f"http://[{teredo('127.0.0.1')}]/",
]


@pytest.mark.parametrize("url", BLOCKED_LITERALS)
def test_private_loopback_link_local_and_metadata_literals_are_blocked(url: str) -> None:
    with pytest.raises(BlockedURL) as caught:
        check_url(url, ANY_HOST, resolver=public_resolver)
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f000001/",  # hexadecimal
        "http://0x7f.1/",
        "http://127.1/",  # short form
        "http://0251.0376.0251.0376/",  # octal 169.254.169.254
        "http://0177.0.0.1/",
        "http://127.000.000.001/",
        "http://3232235777./",  # decimal 192.168.1.1 with a trailing dot
    ],
)
def test_cve_2021_29921_non_canonical_ipv4_forms_are_refused(url: str) -> None:
    # Parsers disagree on leading zeros, hex and short forms (CVE-2021-29921 in Python's own
    # ipaddress); the guard refuses them whatever any resolver would make of them.
    with pytest.raises(BlockedURL):
        check_url(url, ANY_HOST, resolver=public_resolver)


def test_the_guard_is_off_until_allowlisted() -> None:
    with pytest.raises(BlockedURL, match="disabled"):
        check_url("https://hooks.example.com/", OutboundPolicy(), resolver=public_resolver)
    policy = OutboundPolicy.from_allowlist(["hooks.example.com", "*.example.org"])
    assert check_url("https://hooks.example.com/x", policy, resolver=public_resolver).host == (
        "hooks.example.com"
    )
    check_url("https://a.b.example.org/", policy, resolver=public_resolver)
    with pytest.raises(BlockedURL, match="not allowed"):
        check_url("https://other.example.net/", policy, resolver=public_resolver)
    with pytest.raises(BlockedURL, match="not allowed"):
        check_url("https://example.org/", policy, resolver=public_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "http://user:pw@hooks.example.com/",
        "http://hooks.example.com\\@127.0.0.1/",
        "http://hooks.example.com /",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://exa_mple.com/",
        "",
    ],
)
def test_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedURL):
        check_url(url, ANY_HOST, resolver=public_resolver)


def test_a_name_resolving_to_any_private_address_is_blocked() -> None:
    def mixed(host: str, port: int) -> Sequence[IPAddress]:
        return [PUBLIC, ipaddress.ip_address("10.1.2.3")]

    with pytest.raises(BlockedURL, match=r"10\.1\.2\.3"):
        check_url("https://hooks.example.com/", ANY_HOST, resolver=mixed)


def test_metadata_opens_only_when_listed_exactly() -> None:
    wide = OutboundPolicy.from_allowlist(["169.254.0.0/16", "::ffff:0:0/96"])
    check_url("http://169.254.1.1/", wide)
    for url in ("http://169.254.169.254/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(BlockedURL):
            check_url(url, wide)
    exact = OutboundPolicy.from_allowlist(["169.254.169.254"])
    check_url("http://169.254.169.254/", exact)
    assert not is_public_address(ipaddress.ip_address("169.254.169.254"))


def test_allowlist_entries_must_be_names_or_networks() -> None:
    with pytest.raises(Exception, match="neither a host name"):
        OutboundPolicy.from_allowlist(["0x7f.1"])
    with pytest.raises(Exception, match="neither a host name"):
        OutboundPolicy.from_allowlist(["http://x/"])


class _Handler(BaseHTTPRequestHandler):
    hits: list[str]

    def do_POST(self) -> None:
        self.hits.append(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * 5000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_dns_rebinding_between_check_and_connect_is_caught(
    local_server: tuple[int, list[str]],
) -> None:
    port, hits = local_server
    answers = iter([[PUBLIC], [ipaddress.ip_address("127.0.0.1")]])

    def rebinding(host: str, port: int) -> Sequence[IPAddress]:
        # First answer (the pre-flight check) is public; the next one points inside.
        return next(answers, [ipaddress.ip_address("127.0.0.1")])

    policy = OutboundPolicy(allow_hosts=("hooks.example.com",), timeout=5.0)
    with SafeHttpClient(policy, resolver=rebinding) as client:
        with pytest.raises(BlockedURL, match=r"127\.0\.0\.1"):
            client.post(f"http://hooks.example.com:{port}/hook", {"event": "x"})
    assert hits == []


def test_allowlisted_network_is_reached_without_redirects_and_with_a_capped_body(
    local_server: tuple[int, list[str]],
) -> None:
    port, hits = local_server
    calls: list[str] = []

    def internal(host: str, port: int) -> Sequence[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    policy = OutboundPolicy(
        allow_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        timeout=5.0,
        max_response_bytes=100,
    )
    with SafeHttpClient(policy, resolver=internal) as client:
        response = client.post(f"http://hooks.internal:{port}/hook", {"event": "x"})
        assert response.status_code == 200
        assert len(response.content) == 100
        with pytest.raises(BlockedURL, match="redirect"):
            client.post(f"http://127.0.0.1:{port}/redirect", {})
    assert hits == ["/hook", "/redirect"]
    assert calls == ["hooks.internal", "hooks.internal"]  # pre-flight, then at connect
