"""Registry benchmark: registering a ~50 MB model and loading it back, against the plain
file operations that do the same work.

The model is an XGBoost booster in its UBJSON format (a core dependency, and a format the
registry stores as is), trained once to the requested size and kept under
``bench/.venvs/cache``. Each round uses a fresh home (SQLite store, local artifact store):

- ``copy``: ``shutil.copyfile`` of the model file (the page cache is warm, as for the
  registry); ``copy + fsync``, what a durable write costs; ``xgboost parse``:
  ``xgboost.Booster(model_file=...)`` alone; ``copy + parse``: both, which is how a model
  is fetched and loaded without a registry;
- ``register``: ``sy.register_model(name, path)`` of a model not stored yet;
- ``load (cold)``: the first ``sy.load_model`` (fetches the version into the model cache);
- ``load (warm)``: a second ``sy.load_model`` (served from the cache, still verified);
- ``download files``: ``sy.download_model`` into a new directory (verified, durable).

Target (issue 4): register and load "dominated by I/O, within 1.5x of copying the files".
Each operation is set against the plain operation doing the same work (``BASELINES``):
the registry writes durably and a load returns a parsed model, so register is compared
with copy + fsync, a cold load with copy + parse, a warm load with the parse alone. The
ratio to a plain page-cache copy is printed too. ``--profile`` prints where the time of one
register and one cold load goes.

Side by side with MLflow (the tracking bench's virtualenv, with xgboost added when missing):
``mlflow.xgboost.log_model`` against ``sy.register_model`` of the same booster object, and
``mlflow.xgboost.load_model`` against ``sy.load_model``, for the large model and for a small
one (where the issue asks for a warm-cache ``sy.load_model`` under 100 ms).

    python bench/registry.py [--repeat 5] [--size-mb 50] [--profile] [--no-mlflow]
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
# What each registry operation is compared with: the plain file operation doing the same
# work. Registering writes durably (the registry never acknowledges bytes that a crash could
# lose), so it is compared with a copy plus fsync; loading returns a parsed model, so it is
# compared with copying the file and parsing it (cold) or parsing a local file (warm).
BASELINES = {
    "register": "copy + fsync",
    "load (cold)": "copy + parse",
    "load (warm)": "xgboost parse",
    "download files": "copy + fsync",
}


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


def _copy_parse(source: Path, dest: Path) -> None:
    import xgboost

    shutil.copyfile(source, dest)
    xgboost.Booster(model_file=str(dest))


def one_round(source: Path, warmup: Path, profile: bool) -> dict[str, float]:
    import xgboost

    import shipyard as sy
    from shipyard.sdk import session

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        root = Path(tmp)
        out["copy"] = _time(lambda: shutil.copyfile(source, root / "copy.ubj"))
        out["copy + fsync"] = _time(lambda: _copy_fsync(source, root / "copy2.ubj"))
        out["xgboost parse"] = _time(lambda: xgboost.Booster(model_file=str(source)))
        out["copy + parse"] = _time(lambda: _copy_parse(source, root / "copy3.ubj"))
        sy.init(home=root / "home", uri=f"sqlite:///{root / 'home' / 'shipyard.db'}",
                project="bench")
        try:
            # Imports and first-use set-up, untimed; another model, so the timed
            # registration stores new bytes rather than finding them already stored.
            sy.register_model("warmup", warmup)
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
            out["download files"] = _time(
                lambda: sy.download_model(f"big:{version.version}", root / "downloaded")
            )
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


SMALL_WARM_TARGET = 0.100

MLFLOW_SCRIPT = """
import json, os, sys, tempfile, time
import mlflow, xgboost

path, repeat = sys.argv[1], int(sys.argv[2])
root = tempfile.mkdtemp(prefix="bench-mlflow-registry-")
mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
mlflow.set_experiment("bench")
booster = xgboost.Booster(model_file=path)
samples = []
for i in range(repeat + 1):
    with mlflow.start_run():
        started = time.perf_counter()
        info = mlflow.xgboost.log_model(booster, name="model", registered_model_name="big")
        logged = time.perf_counter() - started
    started = time.perf_counter()
    mlflow.xgboost.load_model(info.model_uri)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    mlflow.xgboost.load_model(info.model_uri)
    again = time.perf_counter() - started
    if i:  # the first round pays imports and set-up
        samples.append({"log_model": logged, "load_model": loaded, "load_model again": again})
print(json.dumps({k: sorted(s[k] for s in samples)[len(samples) // 2] for k in samples[0]}))
"""


def small_model_file() -> Path:
    """A typical tabular XGBoost model (100 trees of depth 6), trained once and cached."""
    path = CACHE / "xgboost-small.ubj"
    if path.exists():
        return path
    import numpy as np
    import xgboost

    rng = np.random.default_rng(11)
    features = rng.normal(size=(5_000, 20))
    target = features @ rng.normal(size=20)
    booster = xgboost.train({"max_depth": 6, "nthread": 2},
                            xgboost.DMatrix(features, label=target), num_boost_round=100)
    CACHE.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return path


def shipyard_objects(source: Path, repeat: int) -> dict[str, float]:
    """``sy.register_model`` of a booster object and ``sy.load_model`` cold and warm."""
    import xgboost

    import shipyard as sy
    from shipyard.sdk import session

    booster = xgboost.Booster(model_file=str(source))
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-registry-obj-") as tmp:
        root = Path(tmp)
        sy.init(home=root / "home", uri=f"sqlite:///{root / 'home' / 'shipyard.db'}",
                project="bench")
        try:
            for i in range(repeat + 1):
                started = time.perf_counter()
                version = sy.register_model("obj", booster)
                registered = time.perf_counter() - started
                loaded = _time(lambda v=version.version: sy.load_model(f"obj:{v}"))
                again = _time(lambda v=version.version: sy.load_model(f"obj:{v}"))
                if i:
                    samples.append({"register_model": registered, "load_model": loaded,
                                    "load_model again": again})
        finally:
            session.reset()
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def mlflow_objects(source: Path, repeat: int) -> dict[str, float] | None:
    """MLflow's figures for the same booster, or None when MLflow cannot be set up here."""
    import json
    import subprocess

    sys.path.insert(0, str(HERE))
    from tracking import mlflow_python

    python = mlflow_python()
    check = subprocess.run([str(python), "-c", "import xgboost"], capture_output=True)
    if check.returncode != 0:
        print("installing xgboost into the MLflow virtualenv (first run only) ...",
              file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "xgboost"], check=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
           "GIT_PYTHON_REFRESH": "quiet"}
    # MLflow writes its artifacts under the working directory: keep them out of the repo.
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-cwd-") as cwd:
        done = subprocess.run([str(python), "-", str(source), str(repeat)],
                              input=MLFLOW_SCRIPT, capture_output=True, text=True, env=env,
                              cwd=cwd)
    if done.returncode != 0:
        print(f"MLflow comparison failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare_with_mlflow(repeat: int, sources: dict[str, Path]) -> None:
    print("\nregistry vs MLflow, the same booster object (seconds, median; ratio = MLflow / "
          "Shipyard, >1 means Shipyard is faster)")
    print(f"{'model':<8}{'operation':<20}{'MLflow':>10}{'Shipyard':>10}{'ratio':>8}")
    pairs = [("log_model", "register_model"), ("load_model", "load_model"),
             ("load_model again", "load_model again")]
    for label, source in sources.items():
        ours = shipyard_objects(source, repeat)
        theirs = mlflow_objects(source, repeat)
        for mlflow_key, our_key in pairs:
            if theirs is None:
                print(f"{label:<8}{our_key:<20}{'-':>10}{ours[our_key]:>10.3f}{'-':>8}")
                continue
            print(f"{label:<8}{our_key:<20}{theirs[mlflow_key]:>10.3f}{ours[our_key]:>10.3f}"
                  f"{theirs[mlflow_key] / ours[our_key]:>7.1f}x")
        if label == "small":
            warm = ours["load_model again"]
            verdict = "yes" if warm <= SMALL_WARM_TARGET else "NO"
            print(f"small model warm-cache load {warm * 1000:.0f} ms "
                  f"(target < {SMALL_WARM_TARGET * 1000:.0f} ms): {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--profile", action="store_true",
                        help="print where one register and one cold load spend their time")
    parser.add_argument("--no-mlflow", action="store_true",
                        help="skip the side-by-side comparison with MLflow")
    args = parser.parse_args(argv)

    source = model_file(args.size_mb)
    size = source.stat().st_size
    warmup = small_model_file()
    samples = [one_round(source, warmup, args.profile and i == 0) for i in range(args.repeat)]
    med = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    print(f"\nregistry vs file copy: {size / 1e6:.1f} MB XGBoost model, "
          f"median of {args.repeat} (seconds; each operation against the copy that does "
          "the same work)")
    print(f"{'operation':<16}{'seconds':>9}{'MB/s':>7}{'x copy':>8}  {'baseline':<14}"
          f"{'x base':>7}{'target':>8}  ok")
    for key, value in med.items():
        base = BASELINES.get(key)
        line = (f"{key:<16}{value:>9.3f}{size / 1e6 / value:>7.0f}"
                f"{value / med['copy']:>7.1f}x")
        if base is not None:
            ratio = value / med[base]
            ok = "yes" if ratio <= TARGET else "NO"
            line += f"  {base:<14}{ratio:>6.2f}x{'<=' + format(TARGET, 'g') + 'x':>8}  {ok}"
        print(line)
    if not args.no_mlflow:
        compare_with_mlflow(args.repeat, {"small": small_model_file(), "large": source})
    return 0


if __name__ == "__main__":
    sys.exit(main())
