"""Tracking benchmark: Shipyard side by side with MLflow on local SQLite, in one run.

The same workload runs on each tool, each on a fresh SQLite database in a fresh directory:

- values/s logging one metric per call (``log_metric``), and one param per call
  (``log_param``),
- points/s logging ``METRICS_PER_STEP`` metrics per call (``log_metrics(..., step=)``),
- points/s logging ``BATCH_SIZE``-point batches (MLflow's ``log_batch``; Shipyard's batch
  write, the call its SDK's buffered logging makes),
- the time of ``search_runs`` over ``SEARCH_RUNS`` finished runs with a filter and an
  ``order_by`` (every match returned as a DataFrame).

Shipyard is measured in local mode, synchronous (every call durable when it returns; the
mode the targets apply to) and asynchronous (``synchronous=False``: calls buffer, a thread
writes; timed up to ``flush()``, so the figure includes making everything durable).

The ``raw sqlite3`` column is the floor for Shipyard's synchronous figures: the same loop
running, on Python's plain ``sqlite3``, exactly the statements Shipyard runs for each call
(its own statement text, ``tracking.service._SQL``, on a database its migrations made, with
its pragmas): ``BEGIN IMMEDIATE``, the inserts, ``COMMIT``, one transaction per call. What
Shipyard spends above it is Python: the SDK, validation and the store's transaction code.

``--remote`` adds the same loops through servers in processes of their own, each on a fresh
SQLite database: ``shipyard server`` (the CLI command, as deployed) and MLflow's tracking
server (``mlflow server``, one worker), with each tool's client SDK.

MLflow is installed into its own virtualenv, ``bench/.venvs/mlflow`` (ignored by git), the
first time, and runs there from a script passed to its interpreter. The 10,000-run search
databases take minutes to fill through each tool's API, so they are kept under
``bench/.venvs/cache`` and reused (``--fresh-search`` refills them).

    python bench/tracking.py [--repeat 3] [--remote] [--fresh-search] [--json PATH]

Targets: Shipyard synchronous at least 20x MLflow on each logging figure, and
``search_runs`` at least 5x faster (issue 2); one value per call at least half the raw
sqlite3 rate (issue 16). Each figure is the median of ``--repeat`` rounds; within a round
the tools run one after the other, so background load hits them alike, and each ratio is
also given as the range of the per-round ratios. For the comparison with raw sqlite3,
Shipyard and raw sqlite3 take turns every tenth of each loop (who goes first alternates),
since the gap between them is microseconds per call. The last column of the first table
compares with the MLflow figures issue 2 quotes for this machine (165 values/s, 1.7k and
6.9k points/s), measured on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venvs" / "mlflow"
CACHE = HERE / ".venvs" / "cache"
MLFLOW_REQUIREMENT = "mlflow==3.17.*"
MLFLOW_FALLBACK = "mlflow>=3,<4"

SINGLE_CALLS = 1000
STEPS = 300
METRICS_PER_STEP = 10
BATCHES = 20
BATCH_SIZE = 1000
SEARCH_RUNS = 10_000
SEARCH_FILTER = "metrics.rmse < 0.5 and params.max_depth = '6'"
SEARCH_ORDER = "metrics.rmse ASC"
SEED = 7

TARGETS = {"single_metric": 20.0, "single_param": 20.0, "per_step": 20.0, "batch": 20.0}
SEARCH_TARGET = 5.0
# Shipyard synchronous / raw sqlite3 running the same statements (issue 16).
RAW_TARGETS = {"single_metric": 0.5, "single_param": 0.5}
LOGGING = ("single_metric", "single_param", "per_step", "batch")
# MLflow 3.17 on this machine as quoted by issue 2, for a second, load-independent check.
ISSUE_MLFLOW = {"single_metric": 165.0, "single_param": 165.0, "per_step": 1700.0,
                "batch": 6900.0}

ROWS = [
    ("single_metric", "log_metric, 1 per call", "values/s"),
    ("single_param", "log_param, 1 per call", "values/s"),
    ("per_step", f"log_metrics, {METRICS_PER_STEP} per step", "points/s"),
    ("batch", f"log_batch, {BATCH_SIZE} per batch", "points/s"),
    ("search", f"search_runs over {SEARCH_RUNS:,} runs", "s"),
]


def search_population() -> list[tuple[int, float, float, str]]:
    """The runs both tools hold for the search: (max_depth, rmse, auc, team) per run."""
    rng = random.Random(SEED)
    return [
        (rng.choice([3, 6, 9, 12]), rng.random(), rng.random(), rng.choice("abcd"))
        for _ in range(SEARCH_RUNS)
    ]


# -- MLflow ------------------------------------------------------------------------------------

# Runs in MLflow's virtualenv: ``python - MODE WORKDIR CONFIG.json``, this text on stdin; prints one
# JSON object of figures. The workload mirrors ``_shipyard_logging`` and ``_shipyard_search``.
MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    mode, work = sys.argv[1], sys.argv[2]
    with open(sys.argv[3]) as f:
        cfg = json.load(f)
    mlflow.set_tracking_uri(cfg.get("uri") or f"sqlite:///{work}/mlflow.db")
    client = MlflowClient()

    def experiment(name):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(name, artifact_location=f"file://{work}/artifacts")

    out = {}
    if mode == "logging":
        exp = experiment("bench")
        with mlflow.start_run(experiment_id=exp) as run:
            n = cfg["single_calls"]
            t = time.perf_counter()
            for i in range(n):
                mlflow.log_metric("loss", float(i), step=i)
            out["single_metric"] = n / (time.perf_counter() - t)
            t = time.perf_counter()
            for i in range(n):
                mlflow.log_param(f"p{i}", i)
            out["single_param"] = n / (time.perf_counter() - t)
            k, steps = cfg["metrics_per_step"], cfg["steps"]
            t = time.perf_counter()
            for s in range(steps):
                mlflow.log_metrics({f"m{j}": float(s + j) for j in range(k)}, step=s)
            out["per_step"] = k * steps / (time.perf_counter() - t)
            size, batches = cfg["batch_size"], cfg["batches"]
            per_key = size // 10
            ts = int(time.time() * 1000)
            t = time.perf_counter()
            for b in range(batches):
                points = [Metric(f"b{j}", float(i), ts, b * per_key + i)
                          for i in range(per_key) for j in range(10)]
                client.log_batch(run.info.run_id, metrics=points)
            out["batch"] = size * batches / (time.perf_counter() - t)
    elif mode == "fill":
        # Through MLflow's own ORM classes in one transaction: its API manages ~8 runs/s
        # here, and only the search is being measured. Rows as ``create_run`` makes them.
        import uuid
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag)
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        exp = experiment("search")
        store = SqlAlchemyStore(f"sqlite:///{work}/mlflow.db", f"file://{work}/artifacts")
        now = int(time.time() * 1000)
        with store.ManagedSessionMaker() as session:
            for i, (depth, rmse, auc, team) in enumerate(cfg["population"]):
                rid, name = uuid.uuid4().hex, f"run-{i}"
                session.add(SqlRun(
                    run_uuid=rid, name=name, source_type="LOCAL", source_name="bench",
                    entry_point_name="", user_id="bench", status="FINISHED",
                    start_time=now + i, end_time=now + i + 1, source_version="",
                    lifecycle_stage="active", experiment_id=int(exp),
                    artifact_uri=f"file://{work}/artifacts/{exp}/{rid}/artifacts"))
                session.flush()
                session.add_all([
                    SqlParam(key="max_depth", value=str(depth), run_uuid=rid),
                    SqlParam(key="lr", value="0.1", run_uuid=rid),
                    SqlTag(key="team", value=team, run_uuid=rid),
                    SqlTag(key="mlflow.runName", value=name, run_uuid=rid),
                    SqlTag(key="mlflow.user", value="bench", run_uuid=rid),
                ])
                for key, value in (("rmse", rmse), ("auc", auc)):
                    for table in (SqlMetric, SqlLatestMetric):
                        session.add(table(key=key, value=value, timestamp=now, step=0,
                                          is_nan=False, run_uuid=rid))
        found = mlflow.search_runs(experiment_ids=[exp], max_results=3)
        assert set(found.columns) >= {"metrics.rmse", "params.max_depth", "tags.team"}
    elif mode == "search":
        exp = experiment("search")
        mlflow.search_runs(experiment_ids=[exp], max_results=10)  # warm the connection
        t = time.perf_counter()
        frame = mlflow.search_runs(experiment_ids=[exp], filter_string=cfg["filter"],
                                   order_by=[cfg["order"]], max_results=cfg["runs"])
        out["search"] = time.perf_counter() - t
        out["search_rows"] = len(frame)
    print(json.dumps(out))
    """
)


def mlflow_python() -> Path:
    """MLflow's interpreter, installing MLflow into its own virtualenv when missing."""
    python = MLFLOW_VENV / "bin" / "python"
    if python.exists() and _run([str(python), "-c", "import mlflow"], check=False) == 0:
        return python
    print(f"installing {MLFLOW_REQUIREMENT} into {MLFLOW_VENV} (first run only) ...",
          file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(MLFLOW_VENV)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if _run([*pip, MLFLOW_REQUIREMENT], check=False) != 0:
        # The exact release may be gone from the index; the newest 3.x keeps the comparison.
        _run([*pip, MLFLOW_FALLBACK])
    return python


def _run(cmd: list[str], check: bool = True) -> int:
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=check)
    return done.returncode


def mlflow_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def run_mlflow(python: Path, mode: str, work: Path, cfg: dict[str, Any]) -> dict[str, float]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
           "GIT_PYTHON_REFRESH": "quiet"}
    config = work / f"{mode}.json"
    config.write_text(json.dumps(cfg))
    done = subprocess.run(
        [str(python), "-", mode, str(work), str(config)], input=MLFLOW_SCRIPT, env=env,
        capture_output=True, text=True, cwd=work,
    )
    if done.returncode != 0:
        raise RuntimeError(f"MLflow {mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def mlflow_logging(python: Path, uri: str | None = None) -> dict[str, float]:
    """The logging loops on a fresh local database, or through the server at ``uri``."""
    cfg = {"single_calls": SINGLE_CALLS, "steps": STEPS, "metrics_per_step": METRICS_PER_STEP,
           "batches": BATCHES, "batch_size": BATCH_SIZE, "uri": uri}
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        return run_mlflow(python, "logging", Path(tmp), cfg)


def mlflow_search_db(python: Path, version: str, fresh: bool) -> Path:
    work = CACHE / f"mlflow-{version}-{SEARCH_RUNS}"
    if fresh and work.exists():
        shutil.rmtree(work)
    if not (work / "ready").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"filling MLflow with {SEARCH_RUNS:,} runs (cached for later runs) ...",
              file=sys.stderr)
        started = time.perf_counter()
        run_mlflow(python, "fill", work, {"population": search_population()})
        (work / "ready").write_text(f"{time.perf_counter() - started:.1f}\n")
    return work


def mlflow_search(python: Path, work: Path, uri: str | None = None) -> dict[str, float]:
    cfg = {"filter": SEARCH_FILTER, "order": SEARCH_ORDER, "runs": SEARCH_RUNS, "uri": uri}
    return run_mlflow(python, "search", work, cfg)


# -- Shipyard ----------------------------------------------------------------------------------


@contextmanager
def shipyard_session(uri: str | None = None, token: str | None = None) -> Iterator[Path]:
    """``sy.init`` on a fresh home (and SQLite store, unless ``uri`` names a server)."""
    import shipyard as sy
    from shipyard.sdk import session

    with tempfile.TemporaryDirectory(prefix="bench-shipyard-") as tmp:
        home = Path(tmp)
        sy.init(home=home, uri=uri or f"sqlite:///{home / 'shipyard.db'}", project="bench",
                token=token)
        try:
            yield home
        finally:
            session.reset()


def _log_batch(run: Any) -> Callable[[list[tuple[str, float, int]]], None]:
    """The batch call: ``ActiveRun.log_batch`` (one backend batch synchronously, one buffer
    append otherwise)."""
    return lambda points: run.log_batch(metrics=points)  # type: ignore[no-any-return]


Calls = dict[str, Callable[[int, int], None]]  # workload -> run its calls [start, stop)


def shipyard_calls(run: Any) -> Calls:
    """The logging loops on an ``ActiveRun``, by workload (``LOGGING``)."""
    log_batch = _log_batch(run)
    per_key = BATCH_SIZE // 10

    def single_metric(start: int, stop: int) -> None:
        for i in range(start, stop):
            run.log_metric("loss", float(i), step=i)

    def single_param(start: int, stop: int) -> None:
        for i in range(start, stop):
            run.log_param(f"p{i}", i)

    def per_step(start: int, stop: int) -> None:
        for s in range(start, stop):
            run.log_metrics({f"m{j}": float(s + j) for j in range(METRICS_PER_STEP)}, step=s)

    def batch(start: int, stop: int) -> None:
        for b in range(start, stop):
            log_batch([(f"b{j}", float(i), b * per_key + i)
                       for i in range(per_key) for j in range(10)])

    return {"single_metric": single_metric, "single_param": single_param,
            "per_step": per_step, "batch": batch}


# Calls per workload, and points (or values) per call.
CALLS = {"single_metric": SINGLE_CALLS, "single_param": SINGLE_CALLS, "per_step": STEPS,
         "batch": BATCHES}
PER_CALL = {"single_metric": 1, "single_param": 1, "per_step": METRICS_PER_STEP,
            "batch": BATCH_SIZE}


def _check_stored(run: Any) -> None:
    final = run.end()
    expected = {"loss": float(SINGLE_CALLS - 1), "b0": float(BATCH_SIZE // 10 - 1)}
    if any(final.metrics.get(k) != v for k, v in expected.items()):
        raise RuntimeError(f"Shipyard lost data: {final.metrics}")


def shipyard_logging(synchronous: bool, uri: str | None = None,
                     token: str | None = None) -> dict[str, float]:
    import shipyard as sy

    out: dict[str, float] = {}
    with shipyard_session(uri, token):
        run = sy.start_run("bench", synchronous=synchronous)
        run.log_metric("warmup", 0.0)
        run.flush()
        for key, calls in shipyard_calls(run).items():
            started = time.perf_counter()
            calls(0, CALLS[key])
            run.flush()
            out[key] = CALLS[key] * PER_CALL[key] / (time.perf_counter() - started)
        _check_stored(run)
    return out


def _shipyard_fill(uri: str) -> None:
    from shipyard.context import RequestContext
    from shipyard.store import open_store
    from shipyard.tracking import service

    store = open_store(uri, cached=False)
    ctx = RequestContext(project="bench", actor="bench")
    try:
        for depth, rmse, auc, team in search_population():
            run = service.create_run(store, ctx, "search", params={"max_depth": depth,
                                                                    "lr": "0.1"})
            service.log_batch(store, ctx, run.id, metrics=[("rmse", rmse), ("auc", auc)],
                              tags={"team": team})
            service.set_terminated(store, ctx, run.id)
    finally:
        store.dispose()


def shipyard_search_db(fresh: bool) -> Path:
    from shipyard.store.migrate import head_revision

    work = CACHE / f"shipyard-{head_revision()}-{SEARCH_RUNS}"
    if fresh and work.exists():
        shutil.rmtree(work)
    if not (work / "ready").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"filling Shipyard with {SEARCH_RUNS:,} runs (cached for later runs) ...",
              file=sys.stderr)
        started = time.perf_counter()
        _shipyard_fill(f"sqlite:///{work / 'shipyard.db'}")
        (work / "ready").write_text(f"{time.perf_counter() - started:.1f}\n")
    return work


def shipyard_search(uri: str, token: str | None = None) -> dict[str, float]:
    import shipyard as sy
    from shipyard.sdk import session

    with tempfile.TemporaryDirectory(prefix="bench-shipyard-") as home:
        sy.init(home=home, uri=uri, project="bench", token=token)
        try:
            sy.search_runs("search", max_results=10)  # warm the connection, as for MLflow
            started = time.perf_counter()
            frame = sy.search_runs("search", filter=SEARCH_FILTER, order_by=[SEARCH_ORDER],
                                   max_results=SEARCH_RUNS)
            return {"search": time.perf_counter() - started, "search_rows": len(frame)}
        finally:
            session.reset()


# -- raw sqlite3 -------------------------------------------------------------------------------


@contextmanager
def raw_sqlite_calls() -> Iterator[Calls]:
    """The logging loops on plain ``sqlite3``: for each call, the statements Shipyard runs
    for it, in one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction, on a database made by
    Shipyard's migrations and opened with its pragmas (the floor of the synchronous figures).
    """
    import sqlite3

    from shipyard.context import RequestContext
    from shipyard.store import open_store
    from shipyard.store.engine import SQLITE_BUSY_TIMEOUT_MS, configure_sqlite
    from shipyard.tracking import service

    sql = service._SQL["?"]
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        path = Path(tmp) / "shipyard.db"
        store = open_store(f"sqlite:///{path}", cached=False)
        try:
            run_id = service.create_run(store, RequestContext(project="bench", actor="bench"),
                                        "bench").id
        finally:
            store.dispose()
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        configure_sqlite(conn, SQLITE_BUSY_TIMEOUT_MS)
        check = (run_id, "bench")
        cur = conn.cursor()
        per_key = BATCH_SIZE // 10

        def points(rows: list[tuple[str, str, float, int, int]],
                   latest: list[tuple[str, str, float, int, int]]) -> None:
            # As ``service._insert_points``: the first row with the run check, the rest,
            # then the newest point per key into the latest values.
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql.insert_point_checked, rows[0] + check)
            if cur.rowcount != 1:
                raise RuntimeError("the run refused a point")
            if len(rows) > 1:
                cur.executemany(sql.insert_point, rows[1:])
            if len(latest) == 1:
                cur.execute(sql.upsert_latest, latest[0])
            else:
                cur.executemany(sql.upsert_latest, latest)
            conn.commit()

        def single_metric(start: int, stop: int) -> None:
            for i in range(start, stop):
                row = [(run_id, "loss", float(i), i, time.time_ns() // 1_000_000)]
                points(row, row)

        def single_param(start: int, stop: int) -> None:
            for i in range(start, stop):
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(sql.insert_param_checked, (run_id, f"p{i}", str(i), *check))
                if cur.rowcount != 1:
                    raise RuntimeError("the run refused a param")
                conn.commit()

        def per_step(start: int, stop: int) -> None:
            for s in range(start, stop):
                ts = time.time_ns() // 1_000_000
                rows = [(run_id, f"m{j}", float(s + j), s, ts) for j in range(METRICS_PER_STEP)]
                points(rows, rows)

        def batch(start: int, stop: int) -> None:
            for b in range(start, stop):
                ts = time.time_ns() // 1_000_000
                rows = [(run_id, f"b{j}", float(i), b * per_key + i, ts)
                        for i in range(per_key) for j in range(10)]
                points(rows, rows[-10:])

        try:
            yield {"single_metric": single_metric, "single_param": single_param,
                   "per_step": per_step, "batch": batch}
        finally:
            cur.close()
            conn.close()


# Shipyard and raw sqlite3 take turns every tenth of a workload, so both see the same load.
CHUNKS = 10


def shipyard_and_raw() -> tuple[dict[str, float], dict[str, float]]:
    """Shipyard synchronous and raw sqlite3 on the same loops, in alternating chunks of
    calls (who goes first alternates too); the rates of each.

    This compares the cost of a call, so it starts once the scan of installed packages a
    run starts in the background (for its ``source.packages`` tag, once per process) is
    done; the other figures include it.
    """
    import threading

    import shipyard as sy

    times: dict[str, dict[str, float]] = {"shipyard": {}, "raw": {}}
    with shipyard_session(), raw_sqlite_calls() as raw_calls:
        run = sy.start_run("bench")
        run.log_metric("warmup", 0.0)
        for thread in threading.enumerate():
            if thread.name == "shipyard-packages":
                thread.join()
        tools = {"shipyard": shipyard_calls(run), "raw": raw_calls}
        for key in LOGGING:
            total = CALLS[key]
            bounds = [total * c // CHUNKS for c in range(CHUNKS + 1)]
            for c in range(CHUNKS):
                for tool in ("shipyard", "raw") if c % 2 == 0 else ("raw", "shipyard"):
                    started = time.perf_counter()
                    tools[tool][key](bounds[c], bounds[c + 1])
                    elapsed = time.perf_counter() - started
                    times[tool][key] = times[tool][key] + elapsed if c else elapsed
        _check_stored(run)
    rates = {tool: {key: CALLS[key] * PER_CALL[key] / spent[key] for key in LOGGING}
             for tool, spent in times.items()}
    return rates["shipyard"], rates["raw"]


# -- remote ------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(cmd: list[str], health: str, ready: Callable[[], bool] = lambda: True,
             env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command until the block ends, once ``health`` answers 200."""
    import httpx

    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(health, timeout=1).status_code == 200 and ready():
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                log.seek(0)
                tail = log.read()[-3000:].decode(errors="replace")
                raise RuntimeError(f"{' '.join(cmd[:3])} ... did not start:\n{tail}")
            time.sleep(0.2)
        yield proc
    finally:
        # The whole session: ``mlflow server`` runs its workers as child processes.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        log.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@contextmanager
def remote_server(uri: str) -> Iterator[tuple[str, str]]:
    """``shipyard server`` (the CLI command) in its own process on ``uri``; (url, token)."""
    from shipyard.security.credentials import read_credentials

    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="bench-server-"))
    cli = "from shipyard.cli.main import main; main()"
    cmd = [sys.executable, "-c", cli, "--home", str(home), "--uri", uri, "--project", "bench",
           "server", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    try:
        with _serving(cmd, f"{url}/api/v1/health",
                      ready=lambda: read_credentials(home) is not None):
            token = read_credentials(home)
            assert token is not None
            yield url, token
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def mlflow_server(python: Path, db: Path) -> Iterator[str]:
    """MLflow's tracking server (``mlflow server``, one worker) on the SQLite file ``db``;
    its URL."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
           "GIT_PYTHON_REFRESH": "quiet"}
    cmd = [str(python), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
           "--default-artifact-root", f"file://{db.parent / 'artifacts'}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    with _serving(cmd, f"{url}/health", env=env):
        yield url


def mlflow_remote(python: Path, search_db: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-server-") as tmp:
        with mlflow_server(python, Path(tmp) / "mlflow.db") as url:
            out = mlflow_logging(python, url)
    # The search runs on a copy of the cached database, as Shipyard's does.
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-server-") as tmp:
        for file in search_db.glob("mlflow.db*"):
            shutil.copyfile(file, Path(tmp) / file.name)
        with mlflow_server(python, Path(tmp) / "mlflow.db") as url:
            out.update(mlflow_search(python, Path(tmp), url))
    return out


def shipyard_remote(fresh: bool) -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        with remote_server(f"sqlite:///{Path(tmp) / 'shipyard.db'}") as (url, token):
            sync = shipyard_logging(True, url, token)
            background = shipyard_logging(False, url, token)
    # The server bootstraps an admin into its store, so it gets a copy of the cached one.
    search_db = shipyard_search_db(fresh)
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        for file in search_db.glob("shipyard.db*"):
            shutil.copyfile(file, Path(tmp) / file.name)
        with remote_server(f"sqlite:///{Path(tmp) / 'shipyard.db'}") as (url, token):
            sync.update(shipyard_search(url, token))
    return sync, background


# -- report ------------------------------------------------------------------------------------


def median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


RAW = "raw sqlite3"
PAIRED = "sync, paired"  # Shipyard synchronous, taking turns with raw sqlite3


def report(columns: dict[str, list[dict[str, float]]], mlflow: str, *,
           sync_column: str = "shipyard sync", targets: bool = True) -> list[str]:
    names = list(columns)
    width = {n: max(17, len(n) + 2) for n in names}
    lines = [f"{'workload':<32}{'unit':>10}" + "".join(f"{n:>{width[n]}}" for n in names)
             + f"{'sync / MLflow':>15}{'rounds':>15}{'target':>9}  ok"
             + (f"{'sync / issue':>14}" if targets else "")]
    for key, label, unit in ROWS:
        values = {n: median(columns[n], key) for n in names if all(key in s for s in columns[n])}
        cells = "".join(
            f"{_fmt(values[n], unit) if n in values else '-':>{width[n]}}" for n in names
        )
        base, ours = values.get(mlflow), values.get(sync_column)
        ratio_text, rounds_text, target_text, ok = "-", "", "-", ""
        if base and ours:
            ratio = base / ours if unit == "s" else ours / base
            ratio_text = f"{ratio:.1f}x"
            low, high = _round_ratios(columns[sync_column], columns[mlflow], key, unit)
            rounds_text = f"{low:.1f}-{high:.1f}x"
            if targets:
                target = SEARCH_TARGET if key == "search" else TARGETS[key]
                target_text, ok = f">={target:g}x", "yes" if ratio >= target else "NO"
        quoted = ISSUE_MLFLOW.get(key)
        versus_issue = f"{ours / quoted:.1f}x" if targets and ours and quoted else ""
        lines.append(f"{label:<32}{unit:>10}{cells}{ratio_text:>15}{rounds_text:>15}"
                     f"{target_text:>9}  {ok:<3}{versus_issue:>14}")
    return lines


def raw_report(columns: dict[str, list[dict[str, float]]]) -> list[str]:
    """Shipyard synchronous against raw sqlite3 running its statements (issue 16)."""
    lines = [f"{'workload':<32}{'unit':>10}{'shipyard sync':>17}{RAW:>17}{'sync / raw':>12}"
             f"{'rounds':>13}{'target':>9}  ok"]
    for key, label, unit in ROWS:
        if key not in LOGGING:
            continue
        ours, raw = median(columns[PAIRED], key), median(columns[RAW], key)
        ratio = ours / raw
        low, high = _round_ratios(columns[PAIRED], columns[RAW], key, unit)
        target = RAW_TARGETS.get(key)
        target_text = f">={target:g}" if target else "-"
        ok = "" if target is None else "yes" if ratio >= target else "NO"
        lines.append(f"{label:<32}{unit:>10}{_fmt(ours, unit):>17}{_fmt(raw, unit):>17}"
                     f"{ratio:>12.2f}{f'{low:.2f}-{high:.2f}':>13}{target_text:>9}  {ok}")
    return lines


def _round_ratios(ours: list[dict[str, float]], base: list[dict[str, float]], key: str,
                  unit: str) -> tuple[float, float]:
    """The lowest and highest ratio of samples taken in the same round."""
    ratios = [b[key] / o[key] if unit == "s" else o[key] / b[key]
              for o, b in zip(ours, base, strict=True)]
    return min(ratios), max(ratios)


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="samples per figure (median)")
    parser.add_argument("--remote", action="store_true",
                        help="also through servers: shipyard server vs mlflow server")
    parser.add_argument("--fresh-search", action="store_true",
                        help="refill the cached 10,000-run search databases")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)

    python = mlflow_python()
    version = mlflow_version(python)
    mlflow = f"MLflow {version}"
    mlflow_db = mlflow_search_db(python, version, args.fresh_search)
    shipyard_db = shipyard_search_db(args.fresh_search)
    shipyard_uri = f"sqlite:///{shipyard_db / 'shipyard.db'}"

    columns: dict[str, list[dict[str, float]]] = {
        mlflow: [], "shipyard sync": [], "shipyard async": [], PAIRED: [], RAW: []
    }
    for i in range(args.repeat):
        print(f"round {i + 1}/{args.repeat} ...", file=sys.stderr)
        columns[mlflow].append({**mlflow_logging(python), **mlflow_search(python, mlflow_db)})
        columns["shipyard sync"].append({**shipyard_logging(True),
                                         **shipyard_search(shipyard_uri)})
        ours, raw = shipyard_and_raw()
        columns[PAIRED].append(ours)
        columns[RAW].append(raw)
        columns["shipyard async"].append(shipyard_logging(False))
    rows = {n: median(columns[n], "search_rows") for n in (mlflow, "shipyard sync")}
    if len(set(rows.values())) != 1:
        raise SystemExit(f"the searches disagree on the number of matches: {rows}")
    print(f"\nShipyard vs {mlflow}, local SQLite, median of {args.repeat} "
          f"(search: {SEARCH_FILTER!r} order by {SEARCH_ORDER!r}, {rows[mlflow]:.0f} matches)")
    versus_mlflow = {n: columns[n] for n in (mlflow, "shipyard sync", "shipyard async")}
    for line in report(versus_mlflow, mlflow):
        print(line, flush=True)
    print(f"\nShipyard sync vs {RAW} running the same statements (one transaction per call, "
          f"same pragmas), taking turns every {CHUNKS}th of each loop; median of "
          f"{args.repeat}")
    for line in raw_report(columns):
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(columns, indent=2))
    if args.remote:
        server = f"{mlflow} server"
        remote: dict[str, list[dict[str, float]]] = {server: [], "remote sync": [],
                                                     "remote async": []}
        for i in range(args.repeat):
            print(f"remote round {i + 1}/{args.repeat} ...", file=sys.stderr)
            for tool in ("mlflow", "shipyard") if i % 2 == 0 else ("shipyard", "mlflow"):
                if tool == "mlflow":
                    remote[server].append(mlflow_remote(python, mlflow_db))
                else:
                    sync, background = shipyard_remote(False)
                    remote["remote sync"].append(sync)
                    remote["remote async"].append(background)
        print(f"\nThrough servers (each in its own process, HTTP on 127.0.0.1, SQLite): "
              f"shipyard server vs mlflow server, median of {args.repeat}; no target")
        for line in report(remote, server, sync_column="remote sync", targets=False):
            print(line)
        if args.json:
            args.json.write_text(json.dumps({**columns, **remote}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
