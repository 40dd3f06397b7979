"""Quickstart benchmark: ``shipyard quickstart`` end to end, as a new user runs it.

Times, each in a fresh process and a fresh temporary home:

- the first run (generate the leads, ingest, preprocess, train, evaluate, register),
- the second run in the same home (every step served from the cache, nothing registered),

plus each step's own duration from the run's records, and prints the machine's core count
and load average, because on a shared machine the load moves the figures more than the code.

    python bench/quickstart.py [--rows 40000] [--repeat 1] [--json]

Target (issue 12): the first run under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60.0


def _command(home: Path, rows: int) -> list[str]:
    # The console script when installed, the module otherwise: the same code either way.
    script = shutil.which("shipyard")
    base = [script] if script else [sys.executable, "-m", "shipyard.cli.main"]
    return [*base, "quickstart", "--home", str(home), "--rows", str(rows)]


def _timed(home: Path, rows: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(_command(home, rows), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"shipyard quickstart failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def _step_seconds(home: Path) -> dict[str, float]:
    """Each step's duration in the home's first quickstart run, from the run records."""
    from shipyard.pipelines import get_pipeline_run, list_pipeline_runs
    from shipyard.quickstart.pipeline import PIPELINE_NAME, TASKS
    from shipyard.store import open_store

    store = open_store(f"sqlite:///{home / 'shipyard.db'}", cached=False)
    try:
        first = list_pipeline_runs(store, "default", pipeline_name=PIPELINE_NAME)[-1]
        tasks = get_pipeline_run(store, "default", first.id).tasks
        out = {}
        for name in TASKS:
            task = tasks[name]
            if task.started_at and task.finished_at:
                out[name] = (task.finished_at - task.started_at).total_seconds()
        return out
    finally:
        store.dispose()


def measure(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        home = Path(tmp, "home")
        load_before = os.getloadavg()[0]
        first = _timed(home, rows)
        cached = _timed(home, rows)
        return {"first_s": first, "cached_s": cached, "steps_s": _step_seconds(home),
                "load_1min_before": load_before}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="leads (default: the CLI's)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh-home repetitions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from shipyard.quickstart.data import DEFAULT_ROWS

    rows = args.rows or DEFAULT_ROWS
    results = [measure(rows) for _ in range(args.repeat)]
    first = statistics.median(r["first_s"] for r in results)
    cached = statistics.median(r["cached_s"] for r in results)
    summary = {
        "rows": rows,
        "cores": os.cpu_count(),
        "load_1min_after": os.getloadavg()[0],
        "first_run_s": round(first, 2),
        "cached_run_s": round(cached, 2),
        "runs": results,
        "target_s": TARGET_SECONDS,
        "meets_target": first < TARGET_SECONDS,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"shipyard quickstart, {rows:,} leads, {os.cpu_count()} cores, "
          f"load {results[0]['load_1min_before']:.1f} before / "
          f"{summary['load_1min_after']:.1f} after (1-min average)")  # fmt: skip
    print(f"  first run (fresh home)   {first:6.1f} s   target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if summary['meets_target'] else 'MISSED'}")  # fmt: skip
    print(f"  second run (all cached)  {cached:6.1f} s")
    for name, seconds in results[0]["steps_s"].items():
        print(f"    {name:<18} {seconds:5.1f} s")


if __name__ == "__main__":
    main()
