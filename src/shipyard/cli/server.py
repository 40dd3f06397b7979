"""``shipyard server`` (the REST API and an embedded worker on one port) and ``shipyard
worker`` (the worker in a process of its own)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.state import command, current

if TYPE_CHECKING:
    from shipyard.config import Settings


def register(root: typer.Typer) -> None:
    root.command("server")(server)
    root.command("worker")(worker)


@command
def server(
    host: Annotated[str, typer.Option(
        "--host", help="Interface to bind; 127.0.0.1 keeps the server private to this "
        "machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="TCP port")] = 8080,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", min=0.1, max=3600.0,
        help="Seconds a request body may pause before the server answers 408; a request "
        "without a valid credential must send its whole body (at most 64 KiB) in that "
        "time")] = 30.0,
    limit_concurrency: Annotated[int, typer.Option(
        "--limit-concurrency", min=1, max=100_000,
        help="Connections served at once; requests beyond them are answered 503")] = 256,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips",
        help="Comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto headers are believed; without it these "
        "headers are ignored")] = None,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Run no pipeline steps in this process: queued runs wait for "
        "a 'shipyard worker' (user code then never runs on the API host)")] = False,
    worker_heartbeat: Annotated[float, typer.Option(
        "--worker-heartbeat", envvar="SHIPYARD_WORKER_HEARTBEAT", min=0.05, max=3600.0,
        help="The embedded worker's --heartbeat (see shipyard worker)")] = 5.0,
    worker_lease: Annotated[float, typer.Option(
        "--worker-lease", envvar="SHIPYARD_WORKER_LEASE", min=0.15, max=86400.0,
        help="The embedded worker's --lease (see shipyard worker)")] = 30.0,
    worker_max_recoveries: Annotated[int, typer.Option(
        "--worker-max-recoveries", envvar="SHIPYARD_WORKER_MAX_RECOVERIES", min=0, max=100,
        help="The embedded worker's --max-recoveries (see shipyard worker)")] = 2,
) -> None:
    """Run the Shipyard server until interrupted: the REST API (its reference at /docs), the
    console's sign-in page, and (unless --no-worker) a worker for queued pipeline runs."""
    # Imported here, not at the top: the server's dependencies are heavy and no other
    # command needs them.
    from shipyard.errors import InvalidArgument
    from shipyard.server import run
    from shipyard.worker import Lease

    try:
        proxies = run.trusted_proxies((forwarded_allow_ips or "").split(","))
    except InvalidArgument as exc:
        raise typer.BadParameter(exc.message, param_hint="--forwarded-allow-ips") from None
    try:
        lease = Lease(heartbeat=worker_heartbeat, timeout=worker_lease,
                      max_recoveries=worker_max_recoveries)
    except InvalidArgument as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--worker-{exc.field}".replace(
            "_", "-")) from None
    run.serve(_local_settings("a server stores its data"), host=host, port=port,
              body_timeout=body_timeout, limit_concurrency=limit_concurrency,
              forwarded_allow_ips=proxies, worker=not no_worker, lease=lease)


@command
def worker(
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60.0,
                                        help="Seconds between looks at the queue")] = 0.5,
    server_url: Annotated[str | None, typer.Option(
        "--server-url", envvar="SHIPYARD_SERVER_URL",
        help="Where steps of runs submitted to a server call it back "
             "[default: http://127.0.0.1:8080]")] = None,
    step_user: Annotated[str | None, typer.Option(
        "--step-user", envvar="SHIPYARD_STEP_USER",
        help="Run those steps as this OS user (the worker must run as root); see "
             "docs/security.md")] = None,
    heartbeat: Annotated[float, typer.Option(
        "--heartbeat", envvar="SHIPYARD_WORKER_HEARTBEAT", min=0.05, max=3600.0,
        help="Seconds between the heartbeats of a running pipeline run")] = 5.0,
    lease: Annotated[float, typer.Option(
        "--lease", envvar="SHIPYARD_WORKER_LEASE", min=0.15, max=86400.0,
        help="Seconds without a heartbeat after which any worker recovers a run (at "
             "least three heartbeats)")] = 30.0,
    max_recoveries: Annotated[int, typer.Option(
        "--max-recoveries", envvar="SHIPYARD_WORKER_MAX_RECOVERIES", min=0, max=100,
        help="Times a run whose worker died is queued again before it is failed")] = 2,
    drain: Annotated[float, typer.Option(
        "--drain", envvar="SHIPYARD_WORKER_DRAIN", min=0.0, max=86400.0,
        help="On SIGTERM, seconds the running pipeline run may take to finish before "
             "it is handed back to the queue (a second SIGTERM hands it back at once)")
    ] = 20.0,
) -> None:
    """Run queued pipeline runs from this process until interrupted (Ctrl-C) or stopped
    (SIGTERM: no new runs; the running one finishes within --drain seconds or goes back
    to the queue)."""
    import dataclasses
    import threading

    from shipyard.errors import InvalidArgument
    from shipyard.runtime import open_runtime
    from shipyard.worker import Lease, default_sources, run_worker, worker_name
    from shipyard.worker.scratch import clean_leftover_scratch

    settings = _local_settings("a worker reads the queue from the database")
    if server_url is not None and not server_url.startswith(("http://", "https://")):
        raise typer.BadParameter("give the server's http(s):// address",
                                 param_hint="--server-url")
    try:
        leased = Lease(heartbeat=heartbeat, timeout=lease, max_recoveries=max_recoveries)
    except InvalidArgument as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    settings = dataclasses.replace(settings, server_url=server_url or settings.server_url,
                                   step_user=step_user or settings.step_user)
    stop, handback = threading.Event(), threading.Event()
    sources = default_sources(lease=leased, handback=handback)
    with open_runtime(settings) as runtime, _stopped_by_sigterm(stop, handback, drain):
        clean_leftover_scratch()
        typer.echo(f"worker {worker_name()} waiting for queued pipeline runs (job sources: "
                   f"{', '.join(s.name for s in sources)}; Ctrl-C stops)")
        run_worker(runtime, sources, stop, poll_seconds=poll)
    typer.echo(f"worker {worker_name()} stopped")


@contextlib.contextmanager
def _stopped_by_sigterm(stop: threading.Event, handback: threading.Event,
                        drain: float) -> Iterator[None]:
    """SIGTERM (systemd's and Kubernetes' stop) sets ``stop``: no new claims. The running
    work has ``drain`` seconds to finish; then, or at a second SIGTERM, ``handback`` asks
    it to go back to the queue."""
    import signal

    def on_sigterm(signum: int, frame: object) -> None:
        if stop.is_set():
            handback.set()
            return
        stop.set()
        timer = threading.Timer(drain, handback.set)
        timer.daemon = True
        timer.start()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _local_settings(why: str) -> Settings:
    """The settings for a process that opens the store itself (not a client of a server)."""
    from shipyard.config import Settings, ensure_home

    state = current()
    settings = Settings.resolve(home=state.home, uri=state.uri, project=state.project)
    if settings.remote:
        raise typer.BadParameter(f"{why}: give a sqlite:// or postgresql+psycopg:// --uri, "
                                 "not http(s)://", param_hint="--uri")
    ensure_home(settings.home)
    return settings
