"""Browser-facing protections as plain data and functions (no web framework here).

The server applies :data:`CONSOLE_SECURITY_HEADERS` to console pages and
:data:`API_SECURITY_HEADERS` to API responses, and rejects a request when
:func:`host_allowed` or :func:`mutation_allowed` say no. Together they stop DNS rebinding
(a foreign ``Host``), cross-site request forgery on a local server (a foreign ``Origin`` or
a ``text/plain`` "simple" POST) and clickjacking of the console.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "API_SECURITY_HEADERS",
    "CONSOLE_SECURITY_HEADERS",
    "LOOPBACK_HOSTS",
    "SAFE_METHODS",
    "content_type_allowed",
    "host_allowed",
    "is_same_origin",
    "mutation_allowed",
    "split_host",
]

CONSOLE_SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # no-referrer: the one-time login link carries a secret in its URL.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""Headers for every console (HTML) response."""

API_SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Headers for every API (JSON) response: nothing in it may be rendered, framed or cached."""

LOOPBACK_HOSTS: frozenset[str] = frozenset({"localhost", "127.0.0.1", "::1"})
"""Host names always accepted: a local server must work at http://localhost:port."""

SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that must not change state and so skip the Origin and Content-Type checks."""

_MUTATION_TYPES = ("application/json", "multipart/form-data")
_HOST = re.compile(r"(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::([0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(value: str | None) -> tuple[str, int | None] | None:
    """Split a ``Host`` header into (lower-case name without trailing dot, port), or None
    if it is missing or malformed (user info, paths, spaces, bad ports are malformed)."""
    if not value:
        return None
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    if match.group(1) is not None:
        try:
            name = str(ipaddress.IPv6Address(match.group(1)))
        except ValueError:
            return None
    else:
        name = match.group(2).lower().rstrip(".")
    port = int(match.group(3)) if match.group(3) else None
    if not name or (port is not None and not 0 < port < 65536):
        return None
    return name, port


def host_allowed(host_header: str | None, allowed_hosts: Iterable[str] = ()) -> bool:
    """True if the request's ``Host`` names this server.

    Loopback names are always accepted; ``allowed_hosts`` adds names (``shipyard.example.com``),
    subdomain wildcards (``*.example.com``) or ``*`` (accept any, for a deployment behind a
    proxy that checks Host itself). The port is not compared.
    """
    parts = split_host(host_header)
    if parts is None:
        return False
    name = parts[0]
    if name in LOOPBACK_HOSTS:
        return True
    for raw in allowed_hosts:
        entry = raw.strip().lower().rstrip(".")
        if entry == "*" or entry == name:
            return True
        if entry.startswith("*.") and name.endswith(entry[1:]):
            return True
    return False


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    scheme, sep, rest = origin.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or "/" in rest:
        return None
    parts = split_host(rest)
    if parts is None:
        return None
    return scheme, parts[0], parts[1] or _DEFAULT_PORTS[scheme]


def is_same_origin(origin: str, *, host_header: str | None, scheme: str) -> bool:
    """True if ``origin`` (``scheme://host[:port]``) is the origin the request was sent to."""
    theirs = _origin_parts(origin)
    parts = split_host(host_header)
    if theirs is None or parts is None or scheme.lower() not in _DEFAULT_PORTS:
        return False
    ours = (scheme.lower(), parts[0], parts[1] or _DEFAULT_PORTS[scheme.lower()])
    return theirs == ours


def mutation_allowed(
    method: str,
    *,
    origin: str | None,
    host_header: str | None,
    scheme: str,
    sec_fetch_site: str | None = None,
    trusted_origins: Iterable[str] = (),
) -> bool:
    """May this request change state, as far as its browser-supplied headers tell?

    Safe methods always may. Otherwise a request with no ``Origin`` (SDK, CLI, curl) may; a
    browser request may only if its ``Origin`` is the server's own or in ``trusted_origins``,
    and ``Sec-Fetch-Site``, when sent, is not ``cross-site``. ``Origin: null`` never may.
    """
    if method.upper() in SAFE_METHODS:
        return True
    if sec_fetch_site is not None and sec_fetch_site.strip().lower() == "cross-site":
        return False
    if origin is None:
        return True
    if is_same_origin(origin, host_header=host_header, scheme=scheme):
        return True
    theirs = _origin_parts(origin)
    return theirs is not None and any(_origin_parts(t) == theirs for t in trusted_origins)


def content_type_allowed(method: str, content_type: str | None, *, has_body: bool = True) -> bool:
    """True if a request body of ``content_type`` may be sent with ``method``.

    Mutating requests carry JSON (``application/json`` or ``application/*+json``) or
    multipart only; only a request without a body may omit Content-Type (some frameworks
    parse an untyped body as JSON, and a foreign page can send one). This refuses the
    ``text/plain`` and form "simple requests" a foreign page can send without CORS.
    """
    if method.upper() in SAFE_METHODS:
        return True
    if content_type is None or not content_type.strip():
        return not has_body
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _MUTATION_TYPES:
        return True
    return media.startswith("application/") and media.endswith("+json")
