"""Drift detection and profiling: Shipyard vs Evidently 0.7 (DataDriftPreset) and whylogs 1.6.

One synthetic dataset for every tool: 20 numeric and 5 categorical columns, ``--rows`` rows
(1M by default) on each side, with drift planted in some columns (``PLANTED``). Each figure
is measured in a fresh process (the data loaded from Parquet first, outside the timing), and
the tools alternate within each round; the table gives medians over ``--repeat`` rounds.
Peak memory is the process's resident memory sampled every 5 ms during the timed call, less
its resident memory just before it. CPU seconds (all the process's threads) are given too:
on a shared machine they move less with the load than wall time.

Figures (issue 19's targets):
- full report: Shipyard's ``detect_drift`` on two DataFrames vs Evidently's DataDriftPreset
  (>= 20x faster, <= 1/4 of the peak memory), and from Parquet paths;
- profiling one side: Shipyard's ``profile`` vs ``whylogs.log`` (>= 5x faster);
- scoring a new window against a stored profile (< 1.5 s at 1M rows);
- scaling: the full report at ``--rows / 10`` and ``--rows`` (<= 10x the time);
- each tool's drifted columns against the planted truth.

Evidently and whylogs run in their own virtualenvs (``pandas<3``), created under /tmp the
first time (``--evidently-python`` / ``--whylogs-python`` to use others)::

    python bench/monitoring.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CACHE = Path("/tmp/shipyard-bench-monitoring")
VENVS = {"evidently": (Path("/tmp/evidently_venv"), ["evidently==0.7.*", "pandas<3", "pyarrow"]),
         "whylogs": (Path("/tmp/whylogs_venv"), ["whylogs==1.6.*", "pandas<3", "pyarrow"])}
NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
PLANTED = {
    "n0": "mean +0.2 sd", "n1": "sd x1.2", "n3": "missing 0% -> 5%",
    "c0": "10-point share change", "c2": "3-point share change", "c3": "new category, 5%",
}
NEGLIGIBLE = {"n2": "mean +0.02 sd (negligible)"}

# Runs in every tool's interpreter: only the standard library, pandas and the tool.
WORKER = r'''
import gc, json, os, sys, threading, time
import pandas as pd

task, ref_path, cur_path = sys.argv[1], sys.argv[2], sys.argv[3]
extra = json.loads(sys.argv[4])
page = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * page

class Peak:
    def __enter__(self):
        gc.collect()
        self.base = self.peak = rss()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        return self
    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.005)
    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu = time.process_time() - self.cpu_start
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())

categorical = extra["categorical"]
if task.startswith("shipyard"):
    # Imported before the timing, as the other tools' modules are (sy.detect_drift imports
    # its module, and SciPy, on first use: about a second of CPU on this machine).
    import shipyard.monitoring.drift
ref = pd.read_parquet(ref_path) if task not in ("shipyard-report-parquet",) else None
cur = pd.read_parquet(cur_path) if task not in ("shipyard-report-parquet",) else None
result = {}
if task == "evidently-report":
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    numeric = [c for c in ref.columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    with Peak() as peak:
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition))
        doc = snapshot.dict()
    drifted, methods = [], {}
    for metric in doc["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        value, threshold = metric["value"], config["threshold"]
        p_value = "p_value" in config["method"]
        methods[config["column"]] = config["method"]
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(config["column"])
    result = {"drifted": drifted, "methods": methods}
elif task == "whylogs-profile":
    import whylogs as why
    with Peak() as peak:
        view = why.log(pandas=cur).view()
    result = {"bytes": len(view.serialize())}
elif task == "shipyard-profile":
    from shipyard.monitoring.profiles import profile
    with Peak() as peak:
        built = profile(cur, categorical_features=categorical)
    result = {"bytes": len(built.to_bytes())}
elif task == "shipyard-report":
    import shipyard as sy
    with Peak() as peak:
        report = sy.detect_drift(ref, cur, categorical_features=categorical)
    result = {"drifted": report.drifted_features}
elif task == "shipyard-report-parquet":
    import shipyard as sy
    with Peak() as peak:
        report = sy.detect_drift(ref_path, cur_path, categorical_features=categorical)
    result = {"drifted": report.drifted_features}
elif task == "shipyard-score":
    import shipyard as sy
    from shipyard.monitoring.profiles import DataProfile
    stored = open(extra["profile"], "rb").read()
    with Peak() as peak:
        report = sy.detect_drift(DataProfile.from_bytes(stored), cur,
                                 categorical_features=categorical)
    result = {"drifted": report.drifted_features}
print(json.dumps({"seconds": peak.seconds, "cpu_seconds": peak.cpu,
                  "peak_mb": (peak.peak - peak.base) / 2**20,
                  **result}))
'''


def make_data(rows: int, seed: int = 19) -> tuple[Path, Path]:
    """Reference and current Parquet files (cached)."""
    folder = CACHE / str(rows)
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def side(current: bool) -> pa.Table:
        columns: dict[str, Any] = {}
        for i, name in enumerate(NUMERIC):
            kind = i % 4
            if kind == 0:
                values = rng.normal(50, 10, rows)
            elif kind == 1:
                values = rng.lognormal(3, 0.8, rows)
            elif kind == 2:
                values = rng.exponential(2.0, rows)
            else:
                values = rng.integers(0, 100, rows).astype(float)
            if current and name == "n0":
                values = values + 0.2 * 10
            if current and name == "n1":
                values = np.exp(3 + (np.log(values) - 3) * 1.2)
            if current and name == "n2":
                values = values + 0.02 * 2.0
            if current and name == "n3":
                values = values.copy()
                values[rng.random(rows) < 0.05] = np.nan
            columns[name] = values
        shares0 = [0.3, 0.25, 0.2, 0.15, 0.1]
        if current:
            shares0 = [0.2, 0.35, 0.2, 0.15, 0.1]
        columns["c0"] = _labels("a", rng.choice(5, rows, p=shares0))
        zipf = 1.0 / np.arange(1, 1001) ** 1.1
        columns["c1"] = _labels("sku", rng.choice(1000, rows, p=zipf / zipf.sum()))
        shares2 = [0.5, 0.3, 0.2] if not current else [0.47, 0.33, 0.2]
        columns["c2"] = _labels("tier", rng.choice(3, rows, p=shares2))
        shares3 = [0.4, 0.35, 0.25] if not current else [0.38, 0.33, 0.24, 0.05]
        columns["c3"] = _labels("src", rng.choice(len(shares3), rows, p=shares3))
        columns["c4"] = _labels("city", rng.choice(100, rows))
        return pa.table(columns)

    pq.write_table(side(False), ref_path)
    pq.write_table(side(True), cur_path)
    return ref_path, cur_path


def _labels(prefix: str, codes: np.ndarray) -> pa.Array:
    names = np.array([f"{prefix}{i}" for i in range(int(codes.max()) + 1)], dtype=object)
    return pa.array(names[codes], type=pa.string())


def ensure_venv(tool: str, given: str | None) -> str:
    if given:
        return given
    folder, requirements = VENVS[tool]
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements],
                       check=True)
    return str(python)


def run(python: str, task: str, ref: Path, cur: Path, **extra: Any) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", WORKER, task, str(ref), str(cur),
         json.dumps({"categorical": CATEGORICAL, **{k: str(v) for k, v in extra.items()}})],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{task} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently-repeat", type=int, default=None,
                        help="rounds with Evidently (it takes minutes a round); default --repeat")
    parser.add_argument("--skip-evidently", action="store_true",
                        help="leave Evidently out (it takes minutes a round)")
    parser.add_argument("--evidently-python")
    parser.add_argument("--whylogs-python")
    args = parser.parse_args(argv)

    evidently = ensure_venv("evidently", args.evidently_python)
    whylogs = ensure_venv("whylogs", args.whylogs_python)
    ref, cur = make_data(args.rows)
    small_ref, small_cur = make_data(args.rows // 10)
    stored = CACHE / str(args.rows) / "reference.profile"
    from shipyard.monitoring.profiles import profile

    stored.write_bytes(profile(ref, categorical_features=CATEGORICAL).to_bytes())
    me = sys.executable
    tasks: dict[str, tuple[str, str, Path, Path, dict[str, Any]]] = {
        "evidently report": (evidently, "evidently-report", ref, cur, {}),
        "shipyard report": (me, "shipyard-report", ref, cur, {}),
        "whylogs profile": (whylogs, "whylogs-profile", ref, cur, {}),
        "shipyard profile": (me, "shipyard-profile", ref, cur, {}),
        "shipyard score vs stored profile": (me, "shipyard-score", ref, cur,
                                             {"profile": stored}),
        "shipyard report from parquet": (me, "shipyard-report-parquet", ref, cur, {}),
        "shipyard report, rows/10": (me, "shipyard-report", small_ref, small_cur, {}),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in tasks}
    evidently_rounds = args.evidently_repeat or args.repeat
    for round_ in range(args.repeat):
        for name, (python, task, r, c, extra) in tasks.items():
            if task == "evidently-report" and (args.skip_evidently
                                               or round_ >= evidently_rounds):
                continue
            results[name].append(run(python, task, r, c, **extra))
            last = results[name][-1]
            print(f"round {round_ + 1} {name}: {last['seconds']:.2f} s, "
                  f"{last.get('cpu_seconds', 0):.2f} s CPU, {last['peak_mb']:.0f} MB",
                  file=sys.stderr, flush=True)

    def med(name: str, key: str) -> float:
        return float(statistics.median(r.get(key, float("nan")) for r in results[name]))

    print(f"\n{args.rows:,} rows a side, 20 numeric + 5 categorical columns; "
          f"medians of {args.repeat} rounds (Evidently: {evidently_rounds})\n")
    print("| figure | seconds | CPU seconds | peak MB |")
    print("| --- | ---: | ---: | ---: |")
    for name in tasks:
        if results[name]:
            print(f"| {name} | {med(name, 'seconds'):.2f} | {med(name, 'cpu_seconds'):.2f} | "
                  f"{med(name, 'peak_mb'):.0f} |")
    if results["evidently report"]:
        speed = med("evidently report", "seconds") / med("shipyard report", "seconds")
        memory = med("shipyard report", "peak_mb") / max(med("evidently report", "peak_mb"),
                                                         1e-9)
        print(f"\n- full report: {speed:.1f}x faster than Evidently (target >= 20x); "
              f"peak memory {memory:.3f} of Evidently's (target <= 0.25)")
    profiling = med("whylogs profile", "seconds") / med("shipyard profile", "seconds")
    scaling = med("shipyard report", "seconds") / med("shipyard report, rows/10", "seconds")
    score = med("shipyard score vs stored profile", "seconds")
    print(f"- profiling: {profiling:.1f}x faster than whylogs (target >= 5x); stored sizes: "
          f"Shipyard {results['shipyard profile'][0]['bytes'] / 1024:.0f} KB, "
          f"whylogs {results['whylogs profile'][0]['bytes'] / 1024:.0f} KB")
    print(f"- scoring a new window against a stored profile: {score:.2f} s (target < 1.5 s)")
    print(f"- scaling rows/10 -> rows: {scaling:.1f}x the time (target <= 10x)")
    truth = set(PLANTED)
    for tool in ("shipyard report", "evidently report"):
        if not results[tool]:
            continue
        found = set(results[tool][0]["drifted"])
        print(f"- {tool}: drifted {sorted(found)}; missed {sorted(truth - found)}; "
              f"false alarms {sorted(found - truth)}")
    print(f"- planted: {PLANTED}; negligible: {NEGLIGIBLE}")
    if results["evidently report"]:
        print(f"- Evidently's methods: {results['evidently report'][0].get('methods')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
