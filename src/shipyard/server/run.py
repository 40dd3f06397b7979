"""Start the server: check the port first so a busy port is one clear line, not a trace.

How the server faces the network is decided here, with defaults that hold on an open port:

* at most ``limit_concurrency`` connections are served at once (uvicorn answers more with 503);
* a request body that stalls for ``body_timeout`` seconds is answered 408 (``server.limits``);
* ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are ignored unless ``forwarded_allow_ips``
  names the reverse proxies that set them. (uvicorn believes them from 127.0.0.1 by default,
  which would let any local client choose the address the login throttle and the audit log
  see.)
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

import uvicorn

from shipyard.config import Settings
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.server.api.identity import LOGIN_LINK_LIFETIME, issue_login_link
from shipyard.server.app import bootstrap, create_app
from shipyard.server.limits import BODY_TIMEOUT
from shipyard.server.readiness import check_at_start
from shipyard.worker import Lease
from shipyard.worker.scratch import clean_leftover_scratch

log = logging.getLogger(__name__)

LIMIT_CONCURRENCY = 256


def check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on, in one clear line.

    The probe binds as uvicorn will (``SO_REUSEADDR``), so the connections a server just
    stopped left in TIME_WAIT do not count as another process: a restarted server gets
    its port back at once, as uvicorn itself would. A live listener still refuses the bind.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FailedPrecondition(
                    f"port {port} on {host} is already in use: stop the other process or "
                    f"pass --port", field="port") from None
            raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror}",
                                     field="host") from None


def trusted_proxies(values: Iterable[str]) -> tuple[str, ...]:
    """Check reverse proxy addresses (``10.0.0.5``, ``10.0.0.0/8``, ``::1``; ``*`` for any).

    Raises ``InvalidArgument(field="forwarded_allow_ips")`` for anything else: uvicorn would
    take a host name as a literal that never matches, and so silently trust nobody.
    """
    out = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        if value != "*":
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise InvalidArgument(
                    f"{value!r} is not an IP address or network: list the addresses of the "
                    "reverse proxies, e.g. 10.0.0.5,10.1.0.0/16", field="forwarded_allow_ips",
                ) from None
        out.append(value)
    return tuple(out)


def uvicorn_options(*, limit_concurrency: int = LIMIT_CONCURRENCY,
                    forwarded_allow_ips: Iterable[str] = ()) -> dict[str, Any]:
    """uvicorn's keyword arguments (besides app, host and port) for these choices."""
    proxies = list(trusted_proxies(forwarded_allow_ips))
    return {
        "log_level": "warning",
        "server_header": False,
        "limit_concurrency": limit_concurrency,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080,
          announce: bool = True, body_timeout: float = BODY_TIMEOUT,
          limit_concurrency: int = LIMIT_CONCURRENCY,
          forwarded_allow_ips: Iterable[str] = (), worker: bool = True,
          lease: Lease | None = None) -> None:
    """Serve the app until interrupted; with ``worker``, it runs queued pipeline runs too
    (``create_app``), leased with ``lease``."""
    if not body_timeout > 0:
        raise InvalidArgument("the body timeout must be a positive number of seconds",
                              field="body_timeout")
    if limit_concurrency < 1:
        raise InvalidArgument("the concurrency limit must be at least 1",
                              field="limit_concurrency")
    options = uvicorn_options(limit_concurrency=limit_concurrency,
                              forwarded_allow_ips=forwarded_allow_ips)
    check_port(host, port)
    token = bootstrap(settings)
    where = local_url(host, port)
    # The body reader (server.limits) finds its timeout in the app's settings; steps of
    # server-side runs call back on this machine's address unless told another.
    settings = dataclasses.replace(
        settings, extra={"serving_settle_heap": "1",  # this process is the server
                         **settings.extra, "body_timeout": repr(float(body_timeout))},
        server_url=settings.server_url or where)
    app = create_app(settings, worker=worker, lease=lease)
    log_to_stderr()
    check_at_start(app.state.shipyard.runtime)
    clean_leftover_scratch()
    if announce:
        print(f"Shipyard {where}  (API docs: {where}/docs)", flush=True)
        if token:
            print(f"Created the admin token; it is in {settings.credentials_path} (0600). "
                  "The SDK and CLI on this machine use it automatically.", flush=True)
        link = issue_login_link(app.state.shipyard, base_url=where)
        minutes = int(LOGIN_LINK_LIFETIME.total_seconds() // 60)
        print(f"Console login link (works once, for {minutes} minutes): {link}", flush=True)
    uvicorn.run(app, host=host, port=port, **options)


def log_to_stderr(level: int = logging.INFO) -> None:
    """Send Shipyard's log records (the access log among them) to standard error, unless
    logging is configured already: a process that set up its own handlers keeps them."""
    package = logging.getLogger("shipyard")
    if package.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    package.addHandler(handler)
    package.setLevel(level)


def local_url(host: str, port: int) -> str:
    """The server's address as seen from this machine (a wildcard bind is reached on the
    loopback address)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}"
