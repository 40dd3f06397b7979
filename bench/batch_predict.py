"""Batch prediction of 1M rows against calling the model in process on the same data.

The issue's model (a 100-tree XGBoost regressor on 10 features), registered in a fresh
local-mode home; the data a Parquet file (and a CSV file) of ``--rows`` rows. Interleaved
rounds, medians of wall time:

- ``in process``: ``pandas.read_parquet`` then ``model.predict`` on the whole frame (the
  framework object itself, no signature check) — what scoring the file in a notebook costs;
- ``predict only``: ``model.predict`` on the frame already in memory (the floor);
- ``batch``: ``sy.batch_predict(model, source, destination)`` with the default chunks
  (streamed, signature-checked, part files, joined into one output with the input columns,
  the prediction and the model version, lineage recorded), the model already in the cache.

- ``batch (parquet, ray)`` with ``--ray``: the same job with ``executor="ray"``, the chunks
  predicted as Ray tasks on the cluster ``RAY_ADDRESS`` names, or on a head this script
  starts on 127.0.0.1 (with ``--ray-cpus`` CPUs) and stops at the end; each job connects its
  own driver process, which is part of its time.

    python bench/batch_predict.py [--rows 1000000] [--rounds 3] [--chunk-rows 100000]
                                  [--csv] [--ray] [--ray-cpus 2]

Target (issue 18): batch prediction within 2x of calling the model in process on the same
data (judged against ``in process``; the ratio to ``predict only`` is printed too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost

import shipyard as sy
from shipyard.sdk import session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--csv", action="store_true", help="also time a CSV source")
    parser.add_argument("--ray", action="store_true", help="also time executor='ray'")
    parser.add_argument("--ray-cpus", type=int, default=2)
    args = parser.parse_args()
    head = _start_head(args.ray_cpus) if args.ray and not os.environ.get("RAY_ADDRESS") \
        else None
    try:
        _bench(args)
    finally:
        if head is not None:  # its own processes only (never "ray stop": it ends every head)
            group, temp = head
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            shutil.rmtree(temp, ignore_errors=True)


def _ray_cli() -> str:
    return shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"


def _start_head(cpus: int) -> tuple[int, str]:
    """A Ray head on 127.0.0.1 for this run, its daemons in one process group (returned
    with its temporary folder); RAY_ADDRESS points at it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="sy-bench-ray-", dir="/tmp")
    # As tests/ray does: independent of any token in ~/.ray or a cluster another program
    # left in /tmp/ray (the job's driver inherits these too).
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env = dict(os.environ)
    starter = subprocess.Popen(
        [_ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    out, _ = starter.communicate(timeout=180)
    if starter.returncode != 0:
        raise SystemExit(out.decode(errors="replace"))
    os.environ["RAY_ADDRESS"] = f"127.0.0.1:{port}"
    return starter.pid, temp


def _bench(args: argparse.Namespace) -> None:

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sy.init(home=root / "home", uri=f"sqlite:///{root / 'db.sqlite'}", project="bench")
        rng = np.random.default_rng(0)
        columns = [f"f{i}" for i in range(10)]
        train = pd.DataFrame(rng.normal(size=(20_000, 10)), columns=columns)
        target = train["f0"] * 2 + train["f1"] * train["f2"] + rng.normal(0, 0.1, 20_000)
        model = xgboost.XGBRegressor(n_estimators=100, max_depth=6).fit(train, target)
        sy.register_model("bench", model, input_example=train.head(5))
        sy.load_model("bench:1")  # into the cache, as a second job would find it

        data = pd.DataFrame(rng.normal(size=(args.rows, 10)), columns=columns)
        parquet = root / "data.parquet"
        data.to_parquet(parquet)
        sources = {"parquet": parquet}
        if args.csv:
            sources["csv"] = root / "data.csv"
            data.to_csv(sources["csv"], index=False)
        del data

        times: dict[str, list[float]] = {"in process": [], "predict only": []}
        runs = [(f"batch ({kind})", source, "local") for kind, source in sources.items()]
        if args.ray:
            runs.append(("batch (parquet, ray)", parquet, "ray"))
        for name, _, _ in runs:
            times[name] = []
        for round_ in range(args.rounds):
            start = time.perf_counter()
            frame = pd.read_parquet(parquet)
            expected = model.predict(frame)
            times["in process"].append(time.perf_counter() - start)
            start = time.perf_counter()
            model.predict(frame)
            times["predict only"].append(time.perf_counter() - start)
            del frame
            for name, source, executor in runs:
                out = root / f"out-{executor}-{source.suffix[1:]}-{round_}.parquet"
                start = time.perf_counter()
                job = sy.batch_predict("bench:1", source, out, chunk_rows=args.chunk_rows,
                                       executor=executor)
                times[name].append(time.perf_counter() - start)
                assert job.rows == args.rows
                got = pd.read_parquet(out, columns=["prediction"])["prediction"].to_numpy()
                assert np.allclose(got, expected, atol=1e-5)
                out.unlink()
        session.reset()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.rows:,} rows, {args.rounds} rounds, chunks of {args.chunk_rows:,} rows "
          "(median seconds)")
    for name, value in medians.items():
        print(f"  {name:16s} {value:7.3f} s")
    for name in medians:
        if name.startswith("batch"):
            ratio = medians[name] / medians["in process"]
            floor = medians[name] / medians["predict only"]
            verdict = "PASS" if ratio <= 2 else "FAIL"
            print(f"  {name}: {ratio:.2f}x in process, {floor:.2f}x predict only "
                  f"(target <= 2x in process: {verdict})")


if __name__ == "__main__":
    main()
