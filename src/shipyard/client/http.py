"""The HTTP transport the remote ports share: one ``httpx.Client`` per session, the
project's URL prefix, and server errors raised as the ``ShipyardError`` kinds the services
raise locally (same message, same field). A server that cannot be reached is
``Unavailable`` (the background logger retries those).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from shipyard.client.problems import raise_for_problem
from shipyard.config import Settings
from shipyard.errors import Unavailable
from shipyard.ids import check_id
from shipyard.security.credentials import read_credentials, read_login_credentials
from shipyard.security.tls import tls_context

# Connecting must be prompt; after that, each read or write may wait on a silent server for
# the session's http_timeout (SHIPYARD_HTTP_TIMEOUT, 60 s by default). Uploads and downloads
# of any size take as long as they keep moving, and a hung server fails them.
CONNECT_SECONDS = 5.0
TIMEOUT = httpx.Timeout(60.0, connect=CONNECT_SECONDS)  # logins, before there is a session
CHUNK = 1 << 20


def resolve_token(settings: Settings) -> str | None:
    """``SHIPYARD_TOKEN``/``--token`` first; then the token ``shipyard login`` saved for
    this server; for a server on this machine, the token it wrote to
    ``$SHIPYARD_HOME/credentials`` on first start."""
    if settings.token:
        return settings.token
    saved = read_login_credentials(settings.home, settings.uri)
    if saved:
        return saved
    if _is_loopback(settings.uri):
        return read_credentials(settings.home)
    return None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpClient:
    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.settings = settings
        self.project = settings.project
        headers = {"User-Agent": "shipyard-sdk"}
        token = resolve_token(settings)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout = httpx.Timeout(settings.http_timeout,
                                     connect=min(CONNECT_SECONDS, settings.http_timeout))
        self.http = httpx.Client(base_url=settings.uri.rstrip("/"), headers=headers,
                                 timeout=self.timeout, transport=transport,
                                 verify=tls_context())

    def close(self) -> None:
        self.http.close()

    def project_path(self, path: str) -> str:
        return f"/api/v1/projects/{quote(self.project, safe='')}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"the Shipyard server at {self.settings.uri} did not answer "
                              f"within {self.settings.http_timeout:g} s "
                              f"({exc.__class__.__name__}; SHIPYARD_HTTP_TIMEOUT sets the "
                              "limit)", retry_after=1) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Shipyard server at {self.settings.uri}: "
                              f"{exc.__class__.__name__}", retry_after=1) from None
        raise_for_problem(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    @contextmanager
    def stream(self, method: str, path: str, what: str, **kwargs: Any
               ) -> Iterator[httpx.Response]:
        """A successful streamed response (a problem is raised as its error); a broken
        connection is ``Unavailable`` naming ``what`` was being fetched."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise_for_problem(response)
                yield response
        except httpx.TransportError as exc:
            raise Unavailable(f"download of {what} failed: {exc.__class__.__name__}",
                              retry_after=1) from None


def path_id(value: str, field: str) -> str:
    """An id for a URL path, checked before sending: the server decodes %2F before routing,
    so a hostile id would otherwise surface as a bare 404 instead of the error local mode
    gives."""
    return check_id(value, field)
