"""A team's mixed load through two servers against one (issue 23).

Real processes: a fresh PostgreSQL database, a moto S3 server for the artifacts, two
``shipyard server --no-worker`` processes on them, and ``--clients`` client processes using
the SDK in remote mode. Each client loops over a mix of what a team's training jobs and
notebooks send: start a run with params, log 5 metrics one call each, log a 4 KiB artifact,
end the run, and search the experiment's runs (10 calls). In a round the clients run for
``--seconds``, all on server A ("one") or half on each ("two"); rounds alternate.

Where the time goes: for each round, the CPU seconds used by each server process, by the
clients, by PostgreSQL (every ``postgres`` process) and by moto, read from /proc, against
the wall time times the cores.

    python bench/team.py --postgres postgresql+psycopg://shipyard:shipyard@127.0.0.1:5432/postgres \
        [--clients 6] [--seconds 20] [--repeat 3]

Issue 23 measured 165 calls/s through two servers against 114-147 through one (13-45%
faster) on this 2-core machine.

Measured 2026-12-03 on 2 cores shared with four other sessions' work (6 clients, 20 s
rounds, medians of 3), twice:

| load average | one server | two servers | two vs one | rounds (one; two) |
| --- | --- | --- | --- | --- |
| 11-14 | 45 calls/s | 50 calls/s | +9% | 28-65; 30-51 |
| 18 | 43 calls/s | 34 calls/s | -22% | 37-44; 30-35 |

Where the CPU went per round (40 CPU-s available), one server / two servers: server
processes 7.5-9.2 / 3.6+3.6 to 4.6+5.2 s, PostgreSQL 0.5 / 1.6-2.3 s, moto under 0.5 s,
clients 1.7-2.8 s, and 27-29 s in other processes on the machine. So about 8-10 ms of
server CPU per call of this mix (the artifact upload and the DataFrame search are its heavy
calls), and a single server used less than half a core: on this machine the servers were
not the bottleneck, the CPU other work took was, and a second server only added processes
competing for it. The issue's 13-45% gain needs a server that is CPU-bound (one
interpreter at a full core) with cores to spare; this machine had neither today.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

CALLS_PER_LOOP = 10  # start_run, 5 log_metric, log_artifact, end, search (2 requests)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) used by process ``pid`` so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every ``postgres`` process, by pid."""
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            found[int(entry)] = _cpu(int(entry))
    return found


def _postgres_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds PostgreSQL used between two readings (a backend that ended meanwhile
    is not counted: the servers' pools keep theirs)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _client(url: str, token: str, home: str, seconds: float, start: float,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.environ.update(SHIPYARD_URI=url, SHIPYARD_TOKEN=token, SHIPYARD_HOME=home)
    import shipyard as sy

    sy.init(project="bench")
    blob = Path(home) / "blob.bin"
    blob.write_bytes(os.urandom(4096))

    def loop() -> None:
        with sy.start_run("team", params={"lr": 0.1, "depth": 6}) as run:
            for i in range(5):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
            run.log_artifact(str(blob), name="blob.bin")
        sy.search_runs("team", filter="params.depth = '6'", max_results=20)

    loop()  # imports (pandas for the search) and connections, outside the timing
    while time.time() < start:
        time.sleep(0.005)
    loops, began, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - began < seconds:
        loop()
        loops += 1
    out.put((loops * CALLS_PER_LOOP / (time.perf_counter() - began),
             time.process_time() - cpu))


def _round(urls: list[str], token: str, clients: int, seconds: float, tmp: Path,
           pids: dict[str, int]) -> dict[str, float]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start = time.time() + 15  # every client imported and warmed up before the clock starts
    procs = []
    for i in range(clients):
        home = tmp / f"client-{uuid.uuid4().hex[:8]}"
        home.mkdir()
        procs.append(mp.Process(target=_client, args=(urls[i % len(urls)], token, str(home),
                                                       seconds, start, out)))
    for p in procs:
        p.start()
    while time.time() < start:
        time.sleep(0.01)
    before = {name: _cpu(pid) for name, pid in pids.items()}
    pg_before = _postgres_cpu()
    wall = time.perf_counter()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    wall = time.perf_counter() - wall
    for p in procs:
        p.join()
    row = {"calls/s": sum(rate for rate, _ in results), "wall": wall}
    for name, pid in pids.items():
        row[name] = _cpu(pid) - before[name]
    row["postgres"] = _postgres_used(pg_before, _postgres_cpu())
    row["clients"] = sum(cpu for _, cpu in results)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("SHIPYARD_TEST_POSTGRES"))
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("--postgres URI (or SHIPYARD_TEST_POSTGRES) is required")
    name = f"sy_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    uri = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="sy-team-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        s3_port = _free_port()
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(s3_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(moto)
        _wait(f"http://127.0.0.1:{s3_port}/", moto)
        httpx.put(f"http://127.0.0.1:{s3_port}/team", timeout=10).raise_for_status()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "AWS_"))}
        env.update(SHIPYARD_URI=uri, SHIPYARD_ARTIFACTS="s3://team/blobs",
                   AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}",
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        urls, pids = [], {"moto": moto.pid}
        for server in ("A", "B"):
            port = _free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "shipyard.cli.main", "server", "--port", str(port),
                 "--no-worker"],
                env={**env, "SHIPYARD_HOME": str(tmp / server)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            procs.append(proc)
            _wait(f"http://127.0.0.1:{port}/api/v1/live", proc)
            urls.append(f"http://127.0.0.1:{port}")
            pids[f"server {server}"] = proc.pid
        from shipyard.security.credentials import read_credentials

        token = read_credentials(tmp / "A")
        assert token
        rows: dict[str, list[dict[str, float]]] = {"one": [], "two": []}
        _round(urls, token, args.clients, 2, tmp, pids)  # warm-up (pools, tables, caches)
        for r in range(args.repeat):
            for label, targets in (("one", urls[:1]), ("two", urls)):
                row = _round(targets, token, args.clients, args.seconds, tmp, pids)
                rows[label].append(row)
                print(f"round {r + 1} {label}: {row['calls/s']:.0f} calls/s", flush=True)
        cores = os.cpu_count() or 1
        print(f"\n{args.clients} clients, {args.seconds:g} s per round, median of "
              f"{args.repeat}; CPU seconds per round (the machine has {cores} cores, "
              f"{cores * args.seconds:g} CPU-s per round; load average "
              f"{os.getloadavg()[0]:.1f})")
        keys = ["calls/s", "server A", "server B", "postgres", "moto", "clients"]
        print("| servers | " + " | ".join(keys) + " | other/idle |")
        print("|" + " --- |" * (len(keys) + 2))
        medians = {}
        for label, got in rows.items():
            med = {k: statistics.median(r[k] for r in got) for k in keys}
            medians[label] = med
            used = sum(med[k] for k in keys[1:])
            print(f"| {label} | " + " | ".join(f"{med[k]:.1f}" for k in keys)
                  + f" | {cores * args.seconds - used:.1f} |")
        gain = medians["two"]["calls/s"] / medians["one"]["calls/s"] - 1
        print(f"\ntwo servers: {gain:+.0%} calls/s against one")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
