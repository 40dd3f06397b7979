"""``shipyard quickstart`` killed with SIGKILL at any point, then run again, completes with
one trained model version (and at most one from the closed loop) and no half-written
artifact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from shipyard.artifacts import open_artifact_store
from shipyard.config import Settings
from shipyard.lineage import queries
from shipyard.pipelines import get_pipeline_run, list_pipeline_runs
from shipyard.quickstart.pipeline import MODEL_NAME, PIPELINE_NAME
from shipyard.registry import get_model_version, list_versions
from shipyard.store import Store, open_store
from tests.quickstart.conftest import ROWS


def _start(home: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so the kill takes the command and everything in its group, as
    # a terminal's kill would; step processes run in sessions of their own and survive it,
    # which is the harder case: the rerun must not race them into a second version.
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "quickstart", "--home", str(home),
         "--rows", str(ROWS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _task_running(store: Store, task: str) -> Callable[[], bool]:
    def check() -> bool:
        runs = list_pipeline_runs(store, "default", pipeline_name=PIPELINE_NAME, limit=1)
        if not runs:
            return False
        state = get_pipeline_run(store, "default", runs[0].id).tasks.get(task)
        return state is not None and state.state == "RUNNING"

    return check


def _kill_when(home: Path, ready: Callable[[], bool], extra: float) -> None:
    proc = _start(home)
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(extra)
    _kill(proc)


def test_sigkill_at_random_points_then_rerun(home: Path) -> None:
    seed = int(os.environ.get("SHIPYARD_CRASH_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    why = f"(SHIPYARD_CRASH_SEED={seed})"
    store = open_store(f"sqlite:///{home / 'shipyard.db'}", cached=False)
    try:
        # Early (starting up or ingesting), at a random moment, and right inside the
        # register step: after it may have committed the version, before the runner
        # records the step as done.
        _kill_when(home, lambda: True, rng.uniform(0.2, 2.0))
        _kill_when(home, lambda: True, rng.uniform(2.0, 12.0))
        _kill_when(home, _task_running(store, "register-model"), rng.uniform(0.0, 0.6))

        final = subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", "quickstart", "--home", str(home),
             "--rows", str(ROWS)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert final.returncode == 0, (why, final.stdout, final.stderr)
        _check_consistent(store, home, why)

        again = subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", "quickstart", "--home", str(home),
             "--rows", str(ROWS)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0 and "0 ran, 5 cached" in again.stdout, (why, again.stdout)
        _check_consistent(store, home, why)
    finally:
        store.dispose()


def _check_consistent(store: Store, home: Path, why: str) -> None:
    versions = list_versions(store, "default", MODEL_NAME)
    # One version trained on the leads, and at most one the closed loop registered (its
    # retraining winner, labelled with the champion it beat).
    trained = [v.version for v in versions if "challenged" not in v.labels]
    retrained = [v.version for v in versions if "challenged" in v.labels]
    assert trained == [1] and len(retrained) <= 1, (why, versions)
    production = get_model_version(store, "default", MODEL_NAME, alias="production").version
    assert production in (1, *retrained), why
    assert not list_pipeline_runs(store, "default", state="RUNNING"), why
    settings = Settings.resolve(home=home)
    artifacts = open_artifact_store(settings.artifacts, cached=False)
    # Every stored blob is whole (its bytes hash to its name) ...
    for digest in artifacts.iter_digests():
        artifacts.verify(digest)
    # ... and everything the records point at is there: model trees and lineage artifacts.
    for version in versions:
        for blob in artifacts.read_tree_manifest(version.tree_digest).values():
            assert artifacts.exists(blob.digest), why
    for node in queries.list_artifacts(store, "default", limit=1000):
        if node.digest:
            assert artifacts.exists(node.digest), (why, node)
