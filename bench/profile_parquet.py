"""Out-of-core profiling: a large Parquet dataset profiled in bounded memory (issue 19).

Writes a synthetic dataset of ``--rows`` rows (4 numeric and 1 categorical column, in files
of ``--rows-per-file`` rows with 1M-row groups; cached under ``--cache``), then profiles the
whole folder with ``shipyard.monitoring.profiles.profile`` in a fresh process and reports
rows per second (wall and CPU) and the peak resident memory: the process's peak
(``ru_maxrss``) and its rise over the resident memory just before profiling. Run by hand::

    python bench/profile_parquet.py --rows 100_000_000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WORKER = r'''
import json, resource, sys, threading, time

from shipyard.monitoring.profiles import profile

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096

base = peak = rss()
running = True

def sample():
    global peak
    while running:
        peak = max(peak, rss())
        time.sleep(0.01)

thread = threading.Thread(target=sample, daemon=True)
thread.start()
start, cpu = time.perf_counter(), time.process_time()
built = profile(sys.argv[1], categorical_features=["segment"])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
running = False
thread.join()
print(json.dumps({"rows": built.rows, "seconds": seconds, "cpu_seconds": cpu,
                  "base_mb": base / 2**20, "peak_rise_mb": (peak - base) / 2**20,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stored_kb": len(built.to_bytes()) / 1024,
                  "amount_median": float(built["amount"].sketch.quantiles([0.5])[0])}))
'''


def make_dataset(folder: Path, rows: int, rows_per_file: int) -> Path:
    """The dataset, one file at a time (bounded memory); reused when already complete."""
    done = folder.with_name(folder.name + ".complete")  # beside it: not a Parquet file
    if done.exists() and done.read_text() == str(rows):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(100)
    segments = np.array([f"segment-{i}" for i in range(200)], dtype=object)
    written, index = 0, 0
    while written < rows:
        n = min(rows_per_file, rows - written)
        table = pa.table({
            "amount": rng.lognormal(3.0, 1.0, n),
            "latency_ms": rng.gamma(2.0, 30.0, n),
            "score": rng.random(n),
            "visits": rng.poisson(4.0, n).astype(np.int64),
            "segment": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, segments.size, n).astype(np.int32)),
                pa.array(segments)),
        })
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=1_000_000)
        written += n
        index += 1
        print(f"wrote {written:,} rows", file=sys.stderr, flush=True)
    done.write_text(str(rows))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--rows-per-file", type=int, default=5_000_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/shipyard-bench-profile"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    folder = make_dataset(args.cache / str(args.rows), args.rows, args.rows_per_file)
    size = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    print(f"dataset: {args.rows:,} rows, {size / 2**30:.2f} GiB of Parquet "
          f"({time.perf_counter() - start:.0f} s to make or find)", file=sys.stderr)
    done = subprocess.run([sys.executable, "-c", WORKER, str(folder)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"profiled {result['rows']:,} rows ({size / 2**30:.2f} GiB Parquet, 5 columns) in "
          f"{result['seconds']:.1f} s wall, {result['cpu_seconds']:.1f} s CPU: "
          f"{result['rows'] / result['seconds'] / 1e6:.2f} M rows/s wall, "
          f"{result['rows'] / result['cpu_seconds'] / 1e6:.2f} M rows/s per CPU second; "
          f"resident memory {result['base_mb']:.0f} MB before, peak rise "
          f"{result['peak_rise_mb']:.0f} MB (ru_maxrss {result['max_rss_mb']:.0f} MB); "
          f"stored profile {result['stored_kb']:.0f} KB; load average {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
