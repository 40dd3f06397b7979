"""Events: Shipyard's bus vs DBOS (SQLite) and procrastinate (PostgreSQL), side by side.

Figures, each the median of ``--repeat`` rounds in which the tools take turns (the order
rotates every round), every measurement in a fresh process and a fresh database:

- publish-and-ack per second: N messages, each published, then pulled and acknowledged one
  at a time (three transactions a message, each committed: what a job queue does for a
  job). DBOS: N workflows enqueued on a queue and run to completion; procrastinate: N jobs
  deferred, then a worker runs them until the queue is empty.
- enqueue-to-start when idle: a consumer waits; a message is published every 30 ms; the
  time from just before the publish call to the consumer holding the message (p50, p99).
  DBOS: a queued workflow's first line; procrastinate: a task's first line, its worker
  listening (LISTEN/NOTIFY).
- registry overhead: ``set_alias`` (alias moved back and forth) with the built-in event
  announced vs with ``announce`` replaced by a no-op, interleaved in blocks.

Targets (issue 20): >= 2,000 publish-and-ack/s on SQLite, >= procrastinate's rate on
PostgreSQL, enqueue-to-start p50 < 5 ms and p99 < 20 ms when idle.

DBOS and procrastinate are installed into their own virtualenvs under /tmp the first time
(never in Shipyard's). PostgreSQL comes from ``SHIPYARD_TEST_POSTGRES`` (a database is
created and dropped per measurement).

    python bench/events.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

VENVS = {"dbos": (Path("/tmp/dbos_venv"), ["dbos"]),
         "procrastinate": (Path("/tmp/procrastinate_venv"), ["procrastinate", "psycopg[binary]"])}
PG = os.environ.get("SHIPYARD_TEST_POSTGRES",
                    "postgresql+psycopg://shipyard:shipyard@127.0.0.1:5432/postgres")

SHIPYARD = r'''
import json, statistics, sys, threading, time
task, uri, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
from shipyard.context import RequestContext
from shipyard.events import bus
from shipyard.store import open_store
CTX = RequestContext(project="default", actor="bench")
store = open_store(uri, cached=False)
bus.create_subscription(store, CTX, "s", "t", min_backoff_seconds=0)
if task == "throughput":
    for _ in range(20):  # warm the statement caches
        bus.publish(store, CTX, "t", {"n": -1})
        (m,) = bus.pull(store, "default", "s", max_messages=1)
        bus.ack(store, "default", "s", [m.lease_token])
    start = time.perf_counter()
    for i in range(n):
        bus.publish(store, CTX, "t", {"n": i})
        (m,) = bus.pull(store, "default", "s", max_messages=1)
        assert bus.ack(store, "default", "s", [m.lease_token]) == 1
    print(json.dumps({"rate": n / (time.perf_counter() - start)}))
elif task == "latency":
    got, done = {}, threading.Event()
    def consume():
        while not done.is_set():
            for m in bus.pull(store, "default", "s", max_messages=10):
                got[m.data] = time.perf_counter()
                bus.ack(store, "default", "s", [m.lease_token])
            if not done.is_set():
                bus.wait_for_messages(store, "default", "s", 30)
    t = threading.Thread(target=consume); t.start()
    time.sleep(0.3)
    sent = {}
    for i in range(-5, n):  # the first five warm up
        sent[i] = time.perf_counter()
        bus.publish(store, CTX, "t", i)
        time.sleep(0.03)
    time.sleep(0.5); done.set(); bus.publish(store, CTX, "t", "stop"); t.join()
    lat = sorted((got[i] - sent[i]) * 1000 for i in range(n))
    print(json.dumps({"p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))]}))
elif task == "registry":
    import numpy as np
    from sklearn.linear_model import LinearRegression
    from shipyard.artifacts import open_artifact_store
    from shipyard.events import builtin
    from shipyard.registry import register_model, set_alias
    arts = open_artifact_store(sys.argv[4], cached=False)
    x = np.arange(8.0).reshape(-1, 1)
    for _ in range(2):
        register_model(store, arts, CTX, "m", LinearRegression().fit(x, x.ravel()))
    real = builtin.announce
    times = {"with": [], "without": [], "unheard": []}
    version = 1
    for phase in ("unheard", "with"):  # first nobody subscribes to the topic, then one does
        if phase == "with":
            bus.create_subscription(store, CTX, "moves", builtin.ALIAS_MOVED)
        for block in range(2 * (n // 20)):
            kind = (phase, "without")[block % 2]
            builtin.announce = real if kind != "without" else (lambda *a, **k: "")
            for _ in range(20):
                version = 3 - version
                start = time.perf_counter()
                set_alias(store, CTX, "m", "prod", version)
                times[kind].append(time.perf_counter() - start)
    builtin.announce = real
    print(json.dumps({k: statistics.median(v) * 1000 for k, v in times.items()}))
'''

DBOS = r'''
import json, os, statistics, sys, threading, time
task, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
from dbos import DBOS
DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{path}",
             "run_admin_server": False})
started = {}
@DBOS.workflow()
def job(i):
    started[i] = time.perf_counter()
    return i
DBOS.launch()
queue = DBOS.register_queue("bench")  # its default: polled every second
if task == "throughput":
    for h in [queue.enqueue(job, -1 - k) for k in range(5)]:
        h.get_result()
    start = time.perf_counter()
    handles = [queue.enqueue(job, i) for i in range(n)]
    for h in handles:
        h.get_result()
    print(json.dumps({"rate": n / (time.perf_counter() - start)}))
else:
    sent = {}
    for i in range(n):
        sent[i] = time.perf_counter()
        queue.enqueue(job, i).get_result()
        time.sleep(0.03)
    lat = sorted((started[i] - sent[i]) * 1000 for i in range(n))
    print(json.dumps({"p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))]}))
DBOS.destroy()
os._exit(0)
'''

PROCRASTINATE = r'''
import asyncio, json, statistics, sys, threading, time
task, conninfo, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import procrastinate
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
started = {}
@app.task(queue="bench")
def job(i):
    started[i] = time.perf_counter()
with app.open():
    app.schema_manager.apply_schema()
    if task == "throughput":
        start = time.perf_counter()
        for i in range(n):
            job.defer(i=i)
        app.run_worker(queues=["bench"], wait=False, concurrency=1)
        assert len(started) == n, len(started)
        print(json.dumps({"rate": n / (time.perf_counter() - start)}))
        sys.exit(0)
async def main():
    async with app.open_async():
        worker = asyncio.create_task(app.run_worker_async(queues=["bench"], wait=True,
                                                          concurrency=1))
        await asyncio.sleep(1.0)
        sent = {}
        for i in range(-5, n):
            sent[i] = time.perf_counter()
            await job.defer_async(i=i)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.5)
        worker.cancel()
        try:
            await worker
        except (asyncio.CancelledError, Exception):
            pass
        lat = sorted((started[i] - sent[i]) * 1000 for i in range(n))
        print(json.dumps({"p50": statistics.median(lat),
                          "p99": lat[int(0.99 * (len(lat) - 1))]}))
asyncio.run(main())
'''


def ensure_venv(tool: str) -> str:
    folder, requirements = VENVS[tool]
    python = folder / "bin" / "python"
    if not (folder / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements],
                       check=True)
        (folder / ".installed").touch()
    return str(python)


def pg_database() -> tuple[str, str]:
    """A fresh PostgreSQL database: (SQLAlchemy URI, libpq conninfo)."""
    from sqlalchemy import create_engine, text

    name = f"sy_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    uri = f"{PG.rsplit('/', 1)[0]}/{name}"
    return uri, uri.replace("postgresql+psycopg://", "postgresql://")


def drop_database(uri: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{uri.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def run(python: str, script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([python, "-c", script, *args], capture_output=True, text=True,
                          check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(tool: str, task: str, n: int, pythons: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-events-") as tmp:
        if tool == "shipyard-sqlite":
            return run(sys.executable, SHIPYARD, task, f"sqlite:///{tmp}/s.db", str(n),
                       f"{tmp}/artifacts")
        if tool == "dbos-sqlite":
            return run(pythons["dbos"], DBOS, task, f"{tmp}/dbos.sqlite", str(n))
        uri, conninfo = pg_database()
        try:
            if tool == "shipyard-postgres":
                return run(sys.executable, SHIPYARD, task, uri, str(n), f"{tmp}/artifacts")
            return run(pythons["procrastinate"], PROCRASTINATE, task, conninfo, str(n))
        finally:
            drop_database(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000, help="for the rates")
    parser.add_argument("--samples", type=int, default=100, help="for the latencies")
    parser.add_argument("--registry-only", action="store_true",
                        help="only the registry overhead (set_alias with and without events)")
    parser.add_argument("--dbos-messages", type=int, default=200,
                        help="DBOS moves ~150/s: fewer messages keep its rounds short")
    args = parser.parse_args(argv)
    pythons = {tool: ensure_venv(tool) for tool in VENVS}
    tools = ["shipyard-sqlite", "dbos-sqlite", "shipyard-postgres", "procrastinate-postgres"]
    rates: dict[str, list[float]] = {t: [] for t in tools}
    lats: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    registry: list[dict[str, float]] = []
    if args.registry_only:
        registry = [measure("shipyard-sqlite", "registry", 200, pythons)
                    for _ in range(args.repeat)]
        print_registry(registry)
        return 0
    for round_no in range(args.repeat):
        order = tools[round_no % len(tools):] + tools[:round_no % len(tools)]
        for tool in order:
            n = args.dbos_messages if tool.startswith("dbos") else args.messages
            rates[tool].append(measure(tool, "throughput", n, pythons)["rate"])
            samples = min(args.samples, 30) if tool.startswith("dbos") else args.samples
            lats[tool].append(measure(tool, "latency", samples, pythons))
            print(f"round {round_no + 1} {tool}: {rates[tool][-1]:,.0f}/s, "
                  f"p50 {lats[tool][-1]['p50']:.1f} ms, p99 {lats[tool][-1]['p99']:.1f} ms",
                  flush=True)
        registry.append(measure("shipyard-sqlite", "registry", 200, pythons))
    med = {t: statistics.median(rates[t]) for t in tools}
    p50 = {t: statistics.median(x["p50"] for x in lats[t]) for t in tools}
    p99 = {t: statistics.median(x["p99"] for x in lats[t]) for t in tools}
    load = os.getloadavg()
    print(f"\nmedians of {args.repeat} rounds (load average {load[0]:.1f} {load[1]:.1f}, "
          f"{os.cpu_count()} CPUs)\n")
    print(f"| {'tool':24} | publish-and-ack/s | enqueue-to-start p50 | p99 |")
    print(f"| {'-' * 24} | ---: | ---: | ---: |")
    for t in tools:
        print(f"| {t:24} | {med[t]:,.0f} | {p50[t]:.1f} ms | {p99[t]:.1f} ms |")
    print(f"\nSQLite: Shipyard {med['shipyard-sqlite'] / med['dbos-sqlite']:.1f}x DBOS's rate "
          f"(target >= 2,000/s: {med['shipyard-sqlite']:,.0f}); p50 "
          f"{p50['dbos-sqlite'] / p50['shipyard-sqlite']:.0f}x lower")
    print(f"PostgreSQL: Shipyard {med['shipyard-postgres'] / med['procrastinate-postgres']:.2f}x "
          f"procrastinate's rate; p50 {p50['shipyard-postgres']:.1f} vs "
          f"{p50['procrastinate-postgres']:.1f} ms, p99 {p99['shipyard-postgres']:.1f} vs "
          f"{p99['procrastinate-postgres']:.1f} ms (targets 5 / 20 ms)")
    print_registry(registry)
    return 0


def print_registry(registry: list[dict[str, float]]) -> None:
    with_ = statistics.median(r["with"] for r in registry)
    unheard = statistics.median(r["unheard"] for r in registry)
    without = statistics.median(r["without"] for r in registry)
    print(f"registry set_alias on SQLite: {without:.2f} ms without announcing; "
          f"{with_:.2f} ms ({(with_ / without - 1) * 100:+.0f}%) with its event and a "
          f"subscriber, {unheard:.2f} ms ({(unheard / without - 1) * 100:+.0f}%) with "
          "nobody subscribed")


if __name__ == "__main__":
    sys.exit(main())
