"""Closed-loop benchmark: from the monitor's alert to the canary's promotion, on the
quick-start model, as ``shipyard quickstart`` runs it.

Each round runs ``shipyard quickstart`` in a fresh process and a fresh temporary home, then
reads the home's records (nothing is timed from the outside but the whole command):

- the whole quickstart (training, serving, drift, the closed loop);
- alert -> decision: from the alert's creation to the canary's verdict (promoted or rolled
  back), split into alert -> retraining run queued (the retrain trigger), the retraining
  run (queued -> finished), run finished -> canary started (the registration's event and the
  canary trigger) and canary started -> verdict (its requests and the judgements).

It prints the machine's core count and load average, because on a shared machine the load
moves the figures more than the code.

    python bench/closed_loop.py [--rows 40000] [--repeat 1] [--json]

Targets (issue 20): alert -> promotion under 60 s; the whole quickstart under 120 s.
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

LOOP_TARGET_S = 60.0
TOTAL_TARGET_S = 120.0


def _command(home: Path, rows: int) -> list[str]:
    script = shutil.which("shipyard")
    base = [script] if script else [sys.executable, "-m", "shipyard.cli.main"]
    return [*base, "quickstart", "--home", str(home), "--rows", str(rows)]


def _loop_figures(home: Path) -> dict[str, Any]:
    """The loop's milestones from the home's records, in seconds from the alert."""
    from shipyard.monitoring import monitors
    from shipyard.pipelines import get_pipeline_run, list_pipeline_runs
    from shipyard.quickstart.monitoring import MONITOR
    from shipyard.quickstart.pipeline import PIPELINE_NAME
    from shipyard.quickstart.serving import ENDPOINT
    from shipyard.serving.rollouts import list_rollouts
    from shipyard.store import open_store

    store = open_store(f"sqlite:///{home / 'shipyard.db'}", cached=False)
    try:
        (alert,) = monitors.list_alerts(store, "default", monitor=MONITOR)
        run = next(r for r in list_pipeline_runs(store, "default", pipeline_name=PIPELINE_NAME)
                   if r.arguments.get("alert") == alert.id)
        run = get_pipeline_run(store, "default", run.id)
        (rollout,) = list_rollouts(store, "default", ENDPOINT)
        start = alert.created_at

        def since(moment: Any) -> float | None:
            return None if moment is None else round((moment - start).total_seconds(), 2)

        return {"verdict": rollout.state, "run_queued_s": since(run.created_at),
                "run_finished_s": since(run.finished_at),
                "canary_started_s": since(rollout.started_at),
                "decided_s": since(rollout.decided_at),
                "canary_requests": (rollout.decision or {}).get("candidate", {}).get(
                    "requests"),
                "reasons": (rollout.decision or {}).get("reasons", [])}
    finally:
        store.dispose()


def measure(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        home = Path(tmp, "home")
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(_command(home, rows), capture_output=True, text=True,
                              check=False)
        total = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"shipyard quickstart failed ({done.returncode}):\n"
                     f"{done.stdout}{done.stderr}")
        return {"total_s": round(total, 2), "load_1min_before": load_before,
                **_loop_figures(home)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="leads (default: the CLI's)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh-home repetitions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from shipyard.quickstart.data import DEFAULT_ROWS

    rows = args.rows or DEFAULT_ROWS
    results = [measure(rows) for _ in range(args.repeat)]
    decided = [r["decided_s"] for r in results if r["decided_s"] is not None]
    loop = statistics.median(decided) if decided else None
    total = statistics.median(r["total_s"] for r in results)
    summary = {
        "rows": rows, "cores": os.cpu_count(), "load_1min_after": os.getloadavg()[0],
        "alert_to_decision_s": loop, "total_s": total, "rounds": results,
        "loop_target_s": LOOP_TARGET_S, "total_target_s": TOTAL_TARGET_S,
        "meets_targets": loop is not None and loop < LOOP_TARGET_S
        and total < TOTAL_TARGET_S,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"shipyard quickstart's closed loop, {rows:,} leads, {os.cpu_count()} cores, "
          f"load {results[0]['load_1min_before']:.1f} before / "
          f"{summary['load_1min_after']:.1f} after (1-min average)")
    shown = "none" if loop is None else f"{loop:6.1f} s"
    print(f"  alert -> verdict     {shown}   target < {LOOP_TARGET_S:.0f} s: "
          f"{'met' if loop is not None and loop < LOOP_TARGET_S else 'MISSED'}")
    print(f"  whole quickstart     {total:6.1f} s   target < {TOTAL_TARGET_S:.0f} s: "
          f"{'met' if total < TOTAL_TARGET_S else 'MISSED'}")
    first = results[0]
    print(f"    retraining run queued    {first['run_queued_s']} s after the alert")
    print(f"    retraining run finished  {first['run_finished_s']} s")
    print(f"    canary started           {first['canary_started_s']} s")
    print(f"    canary {first['verdict']:<17} {first['decided_s']} s "
          f"({first['canary_requests']} canary requests)")


if __name__ == "__main__":
    main()
