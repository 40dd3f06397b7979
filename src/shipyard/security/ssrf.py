"""The one guard for outbound URLs (webhooks and any later URL-taking feature).

Guarantees, for every request sent through :class:`SafeHttpClient` or :func:`guarded_post`:

* **Off by default.** An empty :class:`OutboundPolicy` allows nothing; an operator opts in
  with an allowlist of host names and/or networks.
* **Only canonical addresses.** A host must be a DNS name or a canonical IP literal. Forms
  that different parsers read differently (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
  ``127.1``) are rejected outright (CWE-1389, CVE-2021-29921).
* **Checked where it connects.** Names are resolved once, inside the connection, and every
  address is checked; the socket connects to that exact address and its peer address is
  checked again before a byte is sent. A DNS answer that changes between a check and the
  connection (rebinding) cannot move the request.
* **Private stays private.** Loopback, private, link-local, CGNAT, reserved, multicast and
  unspecified addresses, and IPv4 hidden inside IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo,
  NAT64) are refused unless a configured network contains them. Cloud metadata addresses
  (169.254.169.254, fd00:ec2::254, ...) are refused unless allowlisted one by one.
* **No redirects, no proxies, a timeout.** A 3xx answer raises; ``HTTP(S)_PROXY`` variables
  are ignored; every phase has a timeout and the whole exchange a deadline; the response body
  is capped.

Errors: :class:`BlockedURL` (an ``InvalidArgument`` with ``field="url"``) for a URL the
policy refuses, ``Unavailable`` for a target that cannot be reached in time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import httpcore
import httpx

from shipyard.errors import InvalidArgument, Unavailable
from shipyard.security.tls import tls_context

__all__ = [
    "METADATA_ADDRESSES",
    "BlockedURL",
    "IPAddress",
    "OutboundPolicy",
    "Resolver",
    "SafeHttpClient",
    "check_url",
    "guarded_post",
    "is_public_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[IPAddress]]
"""Turns ``(host, port)`` into addresses; the default uses :func:`socket.getaddrinfo`."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS resolver
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# Something an inet_aton-style parser would read as an IPv4 address: 1-4 parts, each decimal,
# octal (leading 0) or hex (0x); trailing dot allowed.
_LOOSE_IPV4 = re.compile(r"(?:(?:0x[0-9a-f]*|[0-9]+)\.){0,3}(?:0x[0-9a-f]*|[0-9]+)\.?")
_MAX_URL = 2048


class BlockedURL(InvalidArgument):
    """The outbound-URL policy refuses this URL; the message says why and what to configure."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="url")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_metadata(ip: IPAddress) -> bool:
    if ip in METADATA_ADDRESSES:
        return True
    return isinstance(ip, ipaddress.IPv6Address) and any(
        inner in METADATA_ADDRESSES for inner in _embedded_ipv4(ip)
    )


def is_public_address(ip: IPAddress) -> bool:
    """True if ``ip`` is globally routable and no private address hides inside it."""
    if _is_metadata(ip):
        return False
    if (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
    ):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return all(is_public_address(inner) for inner in _embedded_ipv4(ip))
    return True


def _normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class OutboundPolicy:
    """Which outbound URLs are allowed. The default allows none.

    ``allow_hosts``: DNS names (``hooks.example.com``), subdomain wildcards
    (``*.example.com``, which does not match ``example.com`` itself) or ``*`` for any name.
    A name on this list may reach *public* addresses only.

    ``allow_networks``: CIDRs or single addresses that may be reached even though they are
    private (``10.0.0.0/8``, ``127.0.0.1``). Metadata addresses open only when listed as a
    single address, never through a wider network.
    """

    allow_hosts: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()
    schemes: tuple[str, ...] = ("https", "http")
    timeout: float = 10.0
    max_response_bytes: int = 1 << 20

    @classmethod
    def from_allowlist(cls, entries: Iterable[str], **options: typing.Any) -> OutboundPolicy:
        """Build a policy from one list mixing names and networks, as configuration gives it.

        Raises ``InvalidArgument(field="allowlist")`` for an entry that is neither.
        """
        hosts: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = _normalize_host(entry)
            bare = name[2:] if name.startswith("*.") else name
            if name != "*" and (
                _LOOSE_IPV4.fullmatch(bare) or not all(_LABEL.fullmatch(p) for p in bare.split("."))
            ):
                raise InvalidArgument(
                    f"allowlist entry {entry[:80]!r} is neither a host name "
                    "(example.com, *.example.com) nor a network (10.0.0.0/8, 192.0.2.7)",
                    field="allowlist",
                )
            hosts.append(name)
        return cls(allow_hosts=tuple(hosts), allow_networks=tuple(networks), **options)

    @property
    def enabled(self) -> bool:
        """False while nothing is allowlisted: every outbound URL is refused."""
        return bool(self.allow_hosts or self.allow_networks)

    def host_allowed(self, host: str) -> bool:
        """True if the DNS name ``host`` is on the name allowlist."""
        name = _normalize_host(host)
        for entry in self.allow_hosts:
            if entry == "*" or entry == name:
                return True
            if entry.startswith("*.") and name.endswith(entry[1:]):
                return True
        return False

    def network_allowed(self, ip: IPAddress) -> bool:
        """True if a configured network holds ``ip`` (metadata: only an exact entry)."""
        for net in self.allow_networks:
            if ip.version != net.version or ip not in net:
                continue
            # ::ffff:169.254.169.254 is the metadata service too; a wide IPv6 range must
            # not open it by the back door.
            if _is_metadata(ip) and net.num_addresses != 1:
                continue
            return True
        return False

    def permits(self, host: str, ip: IPAddress) -> bool:
        """May a request for ``host`` connect to ``ip``? The check applied at connect time."""
        if self.network_allowed(ip):
            return True
        return is_public_address(ip) and self.host_allowed(host)


def _system_resolver(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BlockedURL(f"cannot resolve host {host[:100]!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _check_host_form(host: str) -> None:
    if _literal(host) is not None:
        return
    name = _normalize_host(host)
    if _LOOSE_IPV4.fullmatch(name):
        raise BlockedURL(
            f"host {host[:100]!r} is not a canonical IP address: write IPv4 as four decimal "
            "numbers without leading zeros (e.g. 192.0.2.7)"
        )
    if not name or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise BlockedURL(f"host {host[:100]!r} is not a valid DNS name")
    # RFC 6761: these names mean this machine whatever a resolver (or /etc/hosts) says, so
    # refuse them before any lookup rather than trust the resolver to answer 127.0.0.1.
    if name == "localhost" or name.endswith(".localhost"):
        raise BlockedURL(
            f"host {host[:100]!r} names this machine: to reach a local service, use its "
            "address (127.0.0.1) and add that address to the outbound allowlist"
        )


def _resolve_checked(
    policy: OutboundPolicy, resolver: Resolver, host: str, port: int
) -> list[IPAddress]:
    literal = _literal(host)
    addresses = [literal] if literal is not None else list(resolver(host, port))
    if not addresses:
        raise BlockedURL(f"host {host[:100]!r} resolves to no address")
    for ip in addresses:
        if not policy.permits(host, ip):
            raise BlockedURL(
                f"outbound request to {host[:100]!r} ({ip}) is not allowed: add the host "
                "name (public addresses only) or its network to the outbound allowlist"
            )
    return addresses


def check_url(url: str, policy: OutboundPolicy, *, resolver: Resolver | None = None) -> httpx.URL:
    """Validate ``url`` against ``policy`` now (e.g. when a webhook is created).

    Returns the parsed URL. This is a pre-flight check for a clear early error; the
    connection re-resolves and re-checks, so passing here never grants a later request.
    """
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise BlockedURL(f"url must be a string of 1 to {_MAX_URL} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in url):
        raise BlockedURL("url must not contain whitespace, control characters or backslashes")
    if not policy.enabled:
        raise BlockedURL(
            "outbound URLs are disabled: configure an outbound allowlist of host names or "
            "networks to enable them"
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BlockedURL(f"url is not a valid URL: {exc}") from None
    if parsed.scheme not in policy.schemes:
        raise BlockedURL(f"url scheme must be one of: {', '.join(policy.schemes)}")
    if parsed.userinfo:
        raise BlockedURL("url must not contain a user name or password")
    host = parsed.host
    if not host:
        raise BlockedURL("url has no host")
    _check_host_form(host)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    _resolve_checked(policy, resolver or _system_resolver, host, port)
    return parsed


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, connects to the checked address and checks the peer again."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner: httpcore.NetworkBackend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        _check_host_form(host)
        addresses = _resolve_checked(self._policy, self._resolver, host, port)
        last_error: Exception | None = None
        for ip in addresses:
            try:
                # Connecting to the literal address pins it: no second DNS lookup happens.
                stream = self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = _peer_address(stream)
            if peer is None or not self._policy.permits(host, peer):
                stream.close()
                raise BlockedURL(
                    f"outbound request to {host[:100]!r} connected to {peer}, "
                    "which the outbound allowlist does not allow"
                )
            return stream
        if last_error is None:  # unreachable: _resolve_checked never returns an empty list
            raise BlockedURL(f"host {host[:100]!r} resolves to no address")
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedURL("outbound requests over unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _peer_address(stream: httpcore.NetworkStream) -> IPAddress | None:
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return None
    try:
        return _literal(str(sock.getpeername()[0]))
    except OSError:
        return None


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: OutboundPolicy, resolver: Resolver) -> None:
        super().__init__(verify=tls_context(trust_env=False), trust_env=False, retries=0)
        # Replace the pool httpx built with one whose every connection goes through the
        # guard; no keep-alive, so a connection is never reused for another host name.
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(trust_env=False),
            max_connections=10,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_GuardedBackend(policy, resolver),
        )


class SafeHttpClient:
    """An HTTP client that can only reach what ``policy`` allows (see the module docstring).

    Use as a context manager, or call :meth:`close`. Thread-safe like ``httpx.Client``.
    """

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolver: Resolver = resolver or _system_resolver
        self._client = httpx.Client(
            transport=_GuardedTransport(policy, self._resolver),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(policy.timeout),
            headers={"User-Agent": "shipyard-webhook"},
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        json: typing.Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; raise ``BlockedURL`` if refused or redirected, ``Unavailable``
        if unreachable or too slow. The returned response's body is fully read and capped
        at ``policy.max_response_bytes`` (longer bodies are truncated)."""
        check_url(url, self.policy, resolver=self._resolver)
        try:
            with self._client.stream(
                method, url, json=json, content=content, headers=headers
            ) as response:
                return self._finish(url, response)
        except httpx.TimeoutException:
            raise Unavailable(f"{url[:200]} did not answer within {self.policy.timeout}s") from None
        except httpx.TransportError as exc:
            # httpx may wrap errors raised inside the transport; surface a refusal as such.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, BlockedURL):
                raise cause from None
            raise Unavailable(f"{url[:200]} could not be reached: {type(exc).__name__}") from None

    def _finish(self, url: str, response: httpx.Response) -> httpx.Response:
        if 300 <= response.status_code < 400:
            raise BlockedURL(
                f"{url[:200]} answered with a redirect ({response.status_code}); "
                "outbound requests do not follow redirects"
            )
        deadline = time.monotonic() + self.policy.timeout
        limit = self.policy.max_response_bytes
        body = bytearray()
        for chunk in response.iter_bytes():  # decoded, so a compressed bomb is capped too
            body += chunk
            if len(body) >= limit:
                del body[limit:]
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"{url[:200]} took longer than {self.policy.timeout}s")
        headers = httpx.Headers(response.headers)
        for name in ("content-encoding", "content-length", "transfer-encoding"):
            headers.pop(name, None)
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=response.request
        )

    def post(
        self, url: str, json: typing.Any = None, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST ``json`` to ``url`` under the policy (see :meth:`request`)."""
        return self.request("POST", url, json=json, headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SafeHttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def guarded_post(
    url: str,
    json: typing.Any,
    *,
    policy: OutboundPolicy,
    headers: Mapping[str, str] | None = None,
    resolver: Resolver | None = None,
) -> httpx.Response:
    """POST ``json`` to ``url`` through a one-off :class:`SafeHttpClient`."""
    with SafeHttpClient(policy, resolver=resolver) as client:
        return client.post(url, json, headers=headers)
