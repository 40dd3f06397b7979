"""Operating ``shipyard server`` as a real process (issue 23): a database that goes away
answers 503 with Retry-After, not 500 (item 2); a stopped server starts again on its port
at once (item 4); readiness names the artifact store and the database apart from
liveness, and a server refuses to start on an unusable artifact store (item 6);
``--no-worker`` runs no pipeline step (item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.pipelines import get_pipeline_run, run_pipeline
from shipyard.runtime import open_runtime
from shipyard.security.credentials import read_credentials
from tests.conftest import _pg_database, require_postgres
from tests.server.live import free_port
from tests.server.processes import running_server, server_env, start_server
from tests.server.proxy import Proxy
from tests.worker.test_loop import tripler


def _until(what: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- item 2: the database goes away -------------------------------------------------------


@pytest.fixture
def pg_behind_proxy() -> Iterator[tuple[str, Proxy]]:
    require_postgres()
    for uri in _pg_database():
        head, _, tail = uri.rpartition("@")
        hostport, _, database = tail.partition("/")
        host, _, port = hostport.partition(":")
        proxy = Proxy((host, int(port or 5432)))
        try:
            yield f"{head}@127.0.0.1:{proxy.port}/{database}", proxy
        finally:
            proxy.close()


def test_a_database_outage_is_503_with_retry_after_then_recovers(
    pg_behind_proxy: tuple[str, Proxy], tmp_path: Path,
) -> None:
    uri, proxy = pg_behind_proxy
    home = tmp_path / "home"
    with running_server(server_env(home, uri), "--no-worker") as server:
        auth = {"Authorization": f"Bearer {read_credentials(home)}"}
        experiments = f"{server.url}/api/v1/projects/default/experiments"
        with httpx.Client(timeout=10) as client:
            assert client.get(experiments, headers=auth).status_code == 200
            proxy.cut()  # the database restarts: connections dropped, then refused
            for url, headers in ((experiments, auth), (f"{server.url}/api/v1/health", {})):
                for _ in range(3):  # the pooled connections broken, then new ones refused
                    answer = client.get(url, headers=headers)
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.headers["retry-after"] == "2"
                    problem = answer.json()
                    assert problem["kind"] == "unavailable" and problem["status"] == 503
                    assert "the database is unavailable" in problem["detail"]
            not_ready = client.get(f"{server.url}/api/v1/ready")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["database"] != "ok"
            assert not_ready.json()["checks"]["artifacts"] == "ok"
            assert client.get(f"{server.url}/api/v1/live").status_code == 200
            proxy.resume()
            started = time.monotonic()
            _until(lambda: client.get(experiments, headers=auth).status_code == 200)
            assert time.monotonic() - started < 5
    out = server.stop()
    assert "status=500" not in out and "Exception in ASGI" not in out, out
    # A shared database with a local artifact folder is worth a warning at start (item 6).
    assert "the database is shared (PostgreSQL) but the artifact store is the local" in out


def test_a_training_loop_logging_in_the_background_loses_nothing_to_an_outage(
    pg_behind_proxy: tuple[str, Proxy], tmp_path: Path,
) -> None:
    import shipyard as sy
    from shipyard.sdk import session

    uri, proxy = pg_behind_proxy
    home = tmp_path / "home"
    with running_server(server_env(home, uri), "--no-worker") as server:
        sy.init(uri=server.url, token=read_credentials(home), home=tmp_path / "client")
        try:
            started = time.monotonic()
            with sy.start_run(experiment="outage", synchronous=False) as run:
                for step in range(60):
                    if step == 20:
                        proxy.cut()  # the database restarts for about two seconds
                    if step == 40:
                        proxy.resume()
                    run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
                    time.sleep(0.05)
            took = time.monotonic() - started
            history = sy.get_metric_history(run.id, "loss")
            ended = sy.get_run(run.id)
        finally:
            session.reset()
            out = server.stop()
    assert "status=503" in out and "status=500" not in out, out  # the outage was seen
    assert [p.step for p in history] == list(range(60))
    assert history[-1].value == pytest.approx(1 / 60)
    assert ended.status == "FINISHED"
    assert took < 30


def test_a_driver_error_of_a_stopped_postgres_is_unavailable(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from shipyard.store.availability import database_unavailable

    require_postgres()
    port = free_port()  # nothing listens there: PostgreSQL is stopped
    engine = create_engine(f"postgresql+psycopg://shipyard:shipyard@127.0.0.1:{port}/x")
    with pytest.raises(DBAPIError) as refused:
        engine.connect()
    unavailable = database_unavailable(refused.value)
    assert unavailable is not None and unavailable.retry_after == 2.0
    # SQLite's own errors are the store's to translate: not a server away.
    sqlite = create_engine(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(DBAPIError) as bad, sqlite.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM missing")
    assert database_unavailable(bad.value) is None
    assert database_unavailable(ValueError("x")) is None


# -- item 4: restart on the same port --------------------------------------------------------


def _time_wait_on(port: int) -> int:
    """Sockets in TIME_WAIT whose local port is ``port`` (Linux's /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "06":
                    count += 1
    return count


def test_a_stopped_server_starts_again_on_its_port_at_once(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    (tmp / "shipyard-upload-left").mkdir(parents=True)  # by a server killed an hour ago
    an_hour_ago = time.time() - 3600
    os.utime(tmp / "shipyard-upload-left", (an_hour_ago, an_hour_ago))
    env = server_env(tmp_path / "home", TMPDIR=str(tmp))
    first = start_server(env, "--no-worker")
    assert not (tmp / "shipyard-upload-left").exists()  # removed at start (item 8)
    try:
        # Keep-alive connections the server closes as it stops: they stay in TIME_WAIT on
        # its port for a minute.
        clients = [httpx.Client(timeout=5) for _ in range(3)]
        for client in clients:
            assert client.get(f"{first.url}/api/v1/live").status_code == 200
    finally:
        first.stop(signal.SIGTERM)
    for client in clients:
        client.close()
    assert _time_wait_on(first.port) >= 1  # otherwise this test would prove nothing
    started = time.monotonic()
    second = start_server(env, "--no-worker", port=first.port)
    try:
        assert httpx.get(f"{second.url}/api/v1/live", timeout=5).json()["status"] == "ok"
        assert time.monotonic() - started < 20
    finally:
        out = second.stop()
    assert "already in use" not in out


def test_a_port_another_process_listens_on_is_still_refused() -> None:
    import socket

    from shipyard.errors import FailedPrecondition
    from shipyard.server.run import check_port

    with socket.socket() as other:  # as uvicorn listens: with SO_REUSEADDR
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(FailedPrecondition) as busy:
            check_port("127.0.0.1", port)
    assert busy.value.field == "port" and f"port {port} on 127.0.0.1 is already in use" in (
        busy.value.message)
    check_port("127.0.0.1", port)  # free again once the other closed it


# -- item 6: readiness and the artifact store ---------------------------------------------------


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    """A moto S3 server as a process of its own (so it can be killed), and the AWS
    variables that point a server at it."""
    port = free_port()
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           # Give up on an endpoint that is down quickly (readiness answers in 5 s).
           "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    yield aws, port


def _start_moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return True
        except httpx.TransportError:
            return False

    _until(up)
    return proc


def _make_bucket(port: int, name: str) -> None:
    assert httpx.put(f"http://127.0.0.1:{port}/{name}", timeout=5).status_code == 200


def test_readiness_names_the_artifact_store_when_s3_goes_away(
    moto: tuple[dict[str, str], int], tmp_path: Path,
) -> None:
    aws, port = moto
    s3 = _start_moto(port)
    try:
        _make_bucket(port, "team")
        env = server_env(tmp_path / "home", SHIPYARD_ARTIFACTS="s3://team/blobs", **aws)
        with running_server(env, "--no-worker") as server, httpx.Client(timeout=30) as http:
            ready = http.get(f"{server.url}/api/v1/ready")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready",
                                    "checks": {"database": "ok", "artifacts": "ok"}}
            s3.kill()
            s3.wait()
            started = time.monotonic()
            down = http.get(f"{server.url}/api/v1/ready")
            took = time.monotonic() - started
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            problem = down.json()
            assert problem["detail"].startswith("not ready: the artifact store ")
            assert problem["checks"]["database"] == "ok"
            assert problem["checks"]["artifacts"] != "ok"
            assert "team" not in down.text and "127.0.0.1" not in down.text  # public
            assert took < 8, took
            # Liveness does not depend on it: the server is not restarted for S3's fault.
            assert http.get(f"{server.url}/api/v1/live").status_code == 200
            s3 = _start_moto(port)  # back, but empty: the bucket is gone
            gone = http.get(f"{server.url}/api/v1/ready")
            assert gone.status_code == 503
            assert "the artifact store was not found" in gone.json()["detail"]
            _make_bucket(port, "team")
            assert http.get(f"{server.url}/api/v1/ready").status_code == 200
    finally:
        s3.kill()
        s3.wait()


def test_a_server_refuses_to_start_on_a_missing_bucket(
    moto: tuple[dict[str, str], int], tmp_path: Path,
) -> None:
    aws, port = moto
    s3 = _start_moto(port)
    try:
        env = server_env(tmp_path / "home", SHIPYARD_ARTIFACTS="s3://no-such-bucket/x", **aws)
        server = start_server(env, "--no-worker", wait=False)
        out = server.proc.communicate(timeout=60)[0]
    finally:
        s3.kill()
        s3.wait()
    assert server.proc.returncode == 1, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert "the artifact store s3://no-such-bucket/x was not found" in line
    assert "SHIPYARD_ARTIFACTS" in line and "Traceback" not in out


# -- item 7: --no-worker ----------------------------------------------------------------------


def test_no_worker_leaves_queued_runs_for_a_worker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.resolve(home=home, environ={})
    with open_runtime(settings, cached=False) as runtime:
        ctx = RequestContext(project="default", actor="tester")
        queued = run_pipeline(runtime.store, runtime.artifacts, ctx, tripler, {"x": 3},
                              settings=runtime.settings, submit=True)
        env = server_env(home)
        with running_server(env, "--no-worker"):
            time.sleep(1.5)  # the embedded worker polls every 0.5 s: it would have run it
            assert get_pipeline_run(runtime.store, "default", queued.id).state == "QUEUED"
        with running_server(env):  # the same server with its worker runs it
            _until(lambda: get_pipeline_run(runtime.store, "default",
                                            queued.id).state == "SUCCEEDED")
        done = get_pipeline_run(runtime.store, "default", queued.id)
        assert done.tasks["triple"].outputs["Output"] == 9
