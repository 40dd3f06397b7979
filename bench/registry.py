"""Registry benchmark: registering a ~50 MB model and loading it back, against copying the
same bytes with the file system.

The model is an XGBoost booster in its UBJSON format (a core dependency, and a format the
registry stores as is), trained once to the requested size and kept under
``bench/.venvs/cache``. Each round uses a fresh home (SQLite store, local artifact store):

- ``copy``: ``shutil.copyfile`` of the model file (the page cache is warm, as for the
  registry), and ``copy + fsync``, which is what a durable write costs;
- ``register``: ``sy.register_model(name, path)``;
- ``load (cold)``: the first ``sy.load_model`` (fetches the version into the model cache);
- ``load (warm)``: a second ``sy.load_model`` (served from the cache, still verified);
- ``xgboost parse``: ``xgboost.Booster(model_file=...)`` alone, the floor under any load.

Target (issue 5): register and load each within 1.5x of a plain copy. ``--profile`` prints
where the time of one register and one cold load goes.

    python bench/registry.py [--repeat 5] [--size-mb 50] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".venvs" / "cache"
TARGET = 1.5


def model_file(size_mb: int) -> Path:
    """An XGBoost booster of at least ``size_mb`` MB, trained once and cached."""
    path = CACHE / f"xgboost-{size_mb}mb.ubj"
    if path.exists():
        return path
    import numpy as np
    import xgboost

    print(f"training a {size_mb} MB XGBoost model (cached for later runs) ...", file=sys.stderr)
    rng = np.random.default_rng(7)
    features = rng.normal(size=(50_000, 20))
    target = features @ rng.normal(size=20) + rng.normal(size=50_000)
    data = xgboost.DMatrix(features, label=target)
    params = {"max_depth": 12, "eta": 0.1, "tree_method": "hist", "nthread": 2}
    booster: Any = None
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".partial.ubj")
    while True:
        booster = xgboost.train(params, data, num_boost_round=25, xgb_model=booster)
        booster.save_model(str(scratch))
        if scratch.stat().st_size >= size_mb * 1024 * 1024:
            break
    scratch.rename(path)
    return path


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _copy_fsync(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def one_round(source: Path, profile: bool) -> dict[str, float]:
    import xgboost

    import shipyard as sy
    from shipyard.sdk import session

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        root = Path(tmp)
        out["copy"] = _time(lambda: shutil.copyfile(source, root / "copy.ubj"))
        out["copy + fsync"] = _time(lambda: _copy_fsync(source, root / "copy2.ubj"))
        out["xgboost parse"] = _time(lambda: xgboost.Booster(model_file=str(source)))
        sy.init(home=root / "home", uri=f"sqlite:///{root / 'home' / 'shipyard.db'}",
                project="bench")
        try:
            sy.register_model("warmup", source)  # imports and first-use set-up, untimed
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            version = sy.register_model("big", source)
            out["register"] = time.perf_counter() - started
            started = time.perf_counter()
            model = sy.load_model(f"big:{version.version}")
            out["load (cold)"] = time.perf_counter() - started
            if profiler:
                profiler.disable()
                _print_profile(profiler)
            out["load (warm)"] = _time(lambda: sy.load_model(f"big:{version.version}"))
            if model is None:
                raise RuntimeError("load_model returned nothing")
        finally:
            session.reset()
    return out


def _print_profile(profiler: cProfile.Profile) -> None:
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
    stats.print_stats(r"shipyard|xgboost|shutil|hashlib", 30)
    print(text.getvalue(), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--profile", action="store_true",
                        help="print where one register and one cold load spend their time")
    args = parser.parse_args(argv)

    source = model_file(args.size_mb)
    size = source.stat().st_size
    samples = [one_round(source, args.profile and i == 0) for i in range(args.repeat)]
    med = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    print(f"\nregistry vs file copy: {size / 1e6:.1f} MB XGBoost model, "
          f"median of {args.repeat} (seconds; ratio to a plain copy)")
    print(f"{'operation':<16}{'seconds':>10}{'MB/s':>10}{'x copy':>10}{'target':>9}  ok")
    for key, value in med.items():
        ratio = value / med["copy"]
        target, ok = "", ""
        if key in ("register", "load (cold)", "load (warm)"):
            target, ok = f"<={TARGET:g}x", "yes" if ratio <= TARGET else "NO"
        print(f"{key:<16}{value:>10.3f}{size / 1e6 / value:>10.0f}{ratio:>9.1f}x{target:>9}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
