"""Profiles merge across Ray tasks (issue 19): partitions of a Parquet dataset profiled in
Ray tasks on a real local head (tests/ray's fixture), merged on the driver, give the
single-pass profile within the sketches' error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.monitoring import metrics
from shipyard.monitoring.profiles import DataProfile, profile
from tests.monitoring.test_profiles import PROBABILITIES, max_rank_error
from tests.ray.heads import Head

PARTS = 4
ROWS = 100_000  # per partition: enough for the sketches to compact before merging

# The driver runs in its own process (Ray joins the cluster at RAY_ADDRESS, the head the
# fixture started); each task profiles one partition and returns the stored bytes.
DRIVER = r'''
import sys
from pathlib import Path

import ray

from shipyard.monitoring.profiles import DataProfile

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
ray.init(address="auto", include_dashboard=False, log_to_driver=False)


@ray.remote
def profile_part(path: str) -> bytes:
    import os

    from shipyard.monitoring.profiles import profile

    stored = profile(path, categorical_features=["region"]).to_bytes()
    return str(os.getpid()).encode() + b"\n" + stored


results = ray.get([profile_part.remote(str(p)) for p in sorted(folder.glob("*.parquet"))])
pids = {r.split(b"\n", 1)[0] for r in results}
merged = DataProfile()
for r in results:
    merged = merged.merge(DataProfile.from_bytes(r.split(b"\n", 1)[1]))
out.write_bytes(merged.to_bytes())
print(len(results), len(pids))
ray.shutdown()
'''


def dataset(folder: Path) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    rows = PARTS * ROWS
    frame = pd.DataFrame({
        "amount": rng.lognormal(3.0, 1.0, rows),
        "age": np.where(rng.random(rows) < 0.03, np.nan, rng.normal(40, 12, rows)),
        "region": rng.integers(0, 50, rows),
        "plan": rng.choice(["free", "pro", "team", "enterprise"], rows, p=[.5, .3, .15, .05]),
    })
    folder.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i in range(PARTS):
        pq.write_table(table.slice(i * ROWS, ROWS), folder / f"part-{i}.parquet")
    return frame


def test_profiles_built_in_ray_tasks_merge_to_the_single_pass_profile(
        ray_head: Head, tmp_path: Path) -> None:
    frame = dataset(tmp_path / "data")
    out = tmp_path / "merged.profile"
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "data"), str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[0] == str(PARTS)  # one task per partition
    merged = DataProfile.from_bytes(out.read_bytes())
    single = profile(tmp_path / "data", categorical_features=["region"])

    for name in ("amount", "age"):
        a, b = merged[name], single[name]
        assert (a.rows, a.missing, a.present) == (b.rows, b.missing, b.present)
        assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
        assert abs(a.mean - b.mean) <= 1e-9 * abs(b.mean)
        assert a.distinct == b.distinct  # HyperLogLog registers merge exactly (max)
        # Both sketches are within 0.2% of the true ranks, and within their error bounds
        # of each other.
        ordered = np.sort(frame[name].dropna().to_numpy())
        assert max_rank_error(ordered, a.sketch.quantiles(PROBABILITIES)) <= 0.002
        assert max_rank_error(ordered, b.sketch.quantiles(PROBABILITIES)) <= 0.002
        bound = metrics.sketch_rank_error(a) + metrics.sketch_rank_error(b)
        assert 0 < metrics.ks_profiles(a, b) <= bound
    for name in ("region", "plan"):  # few categories: counts exact
        a, b = merged[name], single[name]
        assert dict(zip(a.items.items, a.items.counts, strict=True)) == \
            dict(zip(b.items.items, b.items.counts, strict=True))
        assert a.items.other == b.items.other == 0 and a.rows == b.rows == PARTS * ROWS
