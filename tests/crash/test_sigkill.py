"""Eight processes log to one store while one of them is SIGKILLed again and again.

On SQLite and on PostgreSQL: every batch whose call returned (the workers journal them,
fsynced) must be stored; no batch may be stored in part; the latest-value table must agree
with the series; and SQLite's own integrity check must pass.

The instants of the kills come from a seed, printed with the test's output and named in
every failure; ``SHIPYARD_CRASH_SEED=<seed>`` replays those instants (the scheduling of the
eight processes around them is the operating system's).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import Connection, text

from shipyard.context import RequestContext
from shipyard.store import open_store
from shipyard.tracking import service
from tests.crash.conftest import start_worker, worker_log
from tests.crash.workers import batch

WORKERS = 8
KILLS = 5  # incarnations of the victim; each is killed at a random instant
# How long one worker may take to acknowledge its first batch: starting Python and importing
# the SDK on two busy cores can take many seconds, and PostgreSQL adds its connection.
PROGRESS_TIMEOUT = 120.0


def _wait_for_progress(proc: subprocess.Popen[bytes], journal: Path, seed: int) -> None:
    """Until the worker has acknowledged a batch (so the kill lands mid-logging)."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while not (journal.exists() and journal.stat().st_size > 0):
        if proc.poll() is not None:
            log = worker_log(journal.with_suffix(".log"))
            raise AssertionError(f"worker exited early ({proc.returncode}): {log}")
        assert time.monotonic() < deadline, f"a worker made no progress (seed {seed})"
        time.sleep(0.02)


def crash_seed() -> int:
    """``SHIPYARD_CRASH_SEED`` when given (to replay a failure), else a fresh one; printed."""
    given = os.environ.get("SHIPYARD_CRASH_SEED")
    seed = int(given) if given else int.from_bytes(os.urandom(4), "big")
    print(f"crash seed {seed}: replay with SHIPYARD_CRASH_SEED={seed}")
    return seed


def test_sigkill_loses_no_acknowledged_batch_and_writes_no_half_batch(
    store_uri: str, tmp_path: Path
) -> None:
    seed = crash_seed()
    rng = random.Random(seed)
    uri = store_uri
    store = open_store(uri, cached=False)  # migrates; the workers only open it
    ctx = RequestContext(project="crash", actor="test")
    run_ids = [service.create_run(store, ctx, "crash").id for _ in range(WORKERS - 1 + KILLS)]
    store.dispose()
    stop = tmp_path / "stop"
    journals = {run_id: tmp_path / f"{run_id}.journal" for run_id in run_ids}

    def start(run_id: str) -> subprocess.Popen[bytes]:
        journal = journals[run_id]
        return start_worker(journal.with_suffix(".log"), "log", uri, run_id, str(journal),
                            str(stop))

    steady = [start(run_id) for run_id in run_ids[: WORKERS - 1]]
    try:
        for run_id in run_ids[WORKERS - 1 :]:
            victim = start(run_id)
            try:
                _wait_for_progress(victim, journals[run_id], seed)
                time.sleep(rng.uniform(0.0, 0.4))
            finally:
                victim.send_signal(signal.SIGKILL)
                victim.wait()
            assert victim.returncode == -signal.SIGKILL, f"seed {seed}"
        for proc, run_id in zip(steady, run_ids, strict=False):
            _wait_for_progress(proc, journals[run_id], seed)
    finally:
        stop.touch()
        for proc in steady:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for proc, run_id in zip(steady, run_ids, strict=False):
        assert proc.returncode == 0, worker_log(journals[run_id].with_suffix(".log"))

    store = open_store(uri, migrate=False, cached=False)
    try:
        with store.read() as db:
            if store.is_sqlite:
                integrity = db.exec_driver_sql("PRAGMA integrity_check").all()
                assert [tuple(row) for row in integrity] == [("ok",)], f"seed {seed}"
            for run_id in run_ids:
                _check_run(db, run_id, journals[run_id], seed)
    finally:
        store.dispose()


def _check_run(db: Connection, run_id: str, journal: Path, seed: int) -> None:
    stored: dict[int, list[tuple[str, float, int]]] = defaultdict(list)
    for key, value, step in db.execute(
        text("SELECT key, value, step FROM run_metrics WHERE run_id = :run"), {"run": run_id}
    ):
        stored[step].append((key, value, step))
    acknowledged = [int(line) for line in journal.read_text().split()]
    assert acknowledged, f"run {run_id} logged nothing (seed {seed})"
    missing = [step for step in acknowledged if step not in stored]
    assert not missing, f"acknowledged batches lost: steps {missing[:10]} (seed {seed})"
    for step, points in stored.items():
        assert sorted(points) == sorted(batch(step)), (
            f"batch at step {step} of run {run_id} is stored in part (seed {seed})"
        )
    # The latest value of each key moved in the same transactions as the series.
    newest: dict[str, tuple[int, float]] = {}
    for step in sorted(stored):
        for key, value, _ in stored[step]:
            newest[key] = (step, value)
    latest = {key: (step, value) for key, step, value in db.execute(
        text("SELECT key, step, value FROM run_latest_metrics WHERE run_id = :run"),
        {"run": run_id},
    )}
    assert latest == newest, f"latest values disagree with the series (seed {seed})"
