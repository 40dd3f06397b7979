"""Performance estimation without labels: Shipyard vs NannyML 0.13, same data, one run.

Data (seeded, built once into ``--cache``): 8 standard-normal features; a binary label
drawn from a non-linear logit (an interaction, a square, a sine), scored by a logistic
regression trained on 100k rows (misspecified on purpose, as deployed models are); a
regression target, non-linear with noise growing with |x3|, predicted by a linear
regression. Reference: 1M labelled rows. Current data under covariate shift (x3 moved by
``s`` standard deviations, x0 by ``s/2``): 10 chunks of 100k rows with ``s`` from 0 to 1,
and 50 chunks of 5k rows with ``s`` cycling over the same values.

Each tool gets the same files:

- Shipyard: ``fit_estimator(..., features=...)`` (classification: score, decision, the 8
  features; regression: prediction and the 8 features), band at 95%.
- NannyML: ``CBPE`` (score and decision; CBPE takes no features) and ``DLE`` (the same
  features and prediction), its band at +/- 3 sampling errors, default settings otherwise.

Printed: accuracy error (mean |estimate - realised|), band coverage at 5k and 100k rows
(``k/n`` chunks whose band holds the realised value), ROC AUC error against the naive
estimate (the reference's AUC), MAE/RMSE relative error, and fitting on the 1M reference
rows: time and peak memory beyond the loaded data (medians over ``--repeat`` rounds, tools
alternating within a round, each fit in a fresh process; peak from the kernel's high-water
mark, reset after loading: ``/proc/self/clear_refs``). Realised values are computed here with
scikit-learn, for both tools.

    python bench/estimation.py [--repeat 3] [--nannyml-venv /tmp/shipyard-bench-nannyml]

NannyML 0.13 needs ``pandas<3`` and statsmodels; its virtualenv is created under /tmp on
first use (never inside the repository).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
FEATURES = [f"x{i}" for i in range(8)]
SHIFTS = [round(i / 9, 3) for i in range(10)]  # 0 to 1 standard deviation
NANNYML_REQUIREMENTS = ["nannyml==0.13.*", "pandas<3", "numpy<2.3", "statsmodels"]


# -- data ---------------------------------------------------------------------------------

def build_data(cache: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if (cache / "done").exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    print(f"building data under {cache} ...", file=sys.stderr)
    rng = np.random.default_rng(19)

    def draw(n: int, shift: float = 0.0) -> Any:
        x = rng.normal(size=(n, len(FEATURES)))
        x[:, 3] += shift
        x[:, 0] += 0.5 * shift
        return x

    def logit(x: Any) -> Any:
        return (1.2 * x[:, 0] - 0.9 * x[:, 1] + 0.6 * x[:, 2] + 0.5 * x[:, 0] * x[:, 1]
                + 0.8 * (x[:, 3] ** 2 - 1) + 0.5 * np.sin(2 * x[:, 4]) + 0.3 * x[:, 5])

    def value(x: Any) -> Any:
        noise = rng.normal(size=len(x)) * (0.5 + 0.5 * np.abs(x[:, 3]))
        return 2 * x[:, 0] + np.sin(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3] + noise

    train = draw(100_000)
    classifier = LogisticRegression().fit(train, rng.random(len(train)) < 1 / (
        1 + np.exp(-logit(train))))
    regressor = LinearRegression().fit(train, value(train))

    def classification(x: Any) -> Any:
        frame = pd.DataFrame(x, columns=FEATURES)
        frame["score"] = classifier.predict_proba(x)[:, 1]
        frame["label"] = (frame["score"] >= 0.5).astype("int64")
        frame["y"] = (rng.random(len(x)) < 1 / (1 + np.exp(-logit(x)))).astype("int64")
        return frame

    def regression(x: Any) -> Any:
        frame = pd.DataFrame(x, columns=FEATURES)
        frame["pred"] = regressor.predict(x)
        frame["y"] = value(x)
        return frame

    for task, make in (("classification", classification), ("regression", regression)):
        make(draw(rows)).to_parquet(cache / f"{task}-reference.parquet")
        for size, count in ((100_000, 10), (5_000, 50)):
            parts = [make(draw(size, SHIFTS[i % len(SHIFTS)])) for i in range(count)]
            pd.concat(parts, ignore_index=True).to_parquet(cache / f"{task}-{size}.parquet")
    (cache / "done").write_text("ok\n")


# -- workers (run in a fresh process: Shipyard's venv or NannyML's) ------------------------

def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _fit(tool: str, task: str, reference: Any, chunk_size: int) -> Any:
    if tool == "shipyard":
        from shipyard.monitoring.estimation import fit_estimator

        if task == "classification":
            return fit_estimator(reference, task="classification", target="y", score="score",
                                 prediction="label", features=FEATURES)
        return fit_estimator(reference, task="regression", target="y", prediction="pred",
                             features=FEATURES)
    import nannyml as nml

    if task == "classification":
        estimator = nml.CBPE(y_pred_proba="score", y_pred="label", y_true="y",
                             metrics=["accuracy", "roc_auc"], chunk_size=chunk_size,
                             problem_type="classification_binary")
    else:
        estimator = nml.DLE(feature_column_names=FEATURES, y_pred="pred", y_true="y",
                            metrics=["mae", "rmse"], chunk_size=chunk_size)
    return estimator.fit(reference)


def _estimate(tool: str, task: str, estimator: Any, current: Any, size: int
              ) -> dict[str, dict[str, list[float]]]:
    metrics = ["accuracy", "roc_auc"] if task == "classification" else ["mae", "rmse"]
    unlabelled = current.drop(columns=["y"])
    out: dict[str, dict[str, list[float]]] = {}
    if tool == "shipyard":
        frame = estimator.estimate(unlabelled, chunk_size=size).to_frame()
        for metric in metrics:
            rows = frame[frame["metric"] == metric]
            out[metric] = {key: rows[key].astype(float).tolist()
                           for key in ("estimate", "lower", "upper")}
        return out
    frame = estimator.estimate(unlabelled).to_df()
    frame = frame[frame[("chunk", "period")] == "analysis"]
    for metric in metrics:
        out[metric] = {
            "estimate": frame[(metric, "value")].astype(float).tolist(),
            "lower": frame[(metric, "lower_confidence_boundary")].astype(float).tolist(),
            "upper": frame[(metric, "upper_confidence_boundary")].astype(float).tolist()}
    return out


def worker(tool: str, task: str, job: str, cache: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import pandas as pd

    # Import everything the fit uses before the baseline, for both tools.
    if tool == "shipyard":
        import scipy.stats  # noqa: F401
        import sklearn.isotonic  # noqa: F401
        import xgboost  # noqa: F401

        import shipyard.monitoring.estimation  # noqa: F401
    else:
        import nannyml  # noqa: F401
    reference = pd.read_parquet(cache / f"{task}-reference.parquet")
    gc.collect()
    if job == "fit":
        Path("/proc/self/clear_refs").write_text("5")   # reset the peak RSS to now
        before = _rss_kb("VmRSS")
        started = time.perf_counter()
        _fit(tool, task, reference, 100_000)
        seconds = time.perf_counter() - started
        peak = _rss_kb("VmHWM")
        print(json.dumps({"seconds": seconds, "peak_mb": (peak - before) / 1024}))
        return
    result: dict[str, Any] = {}
    for size in (100_000, 5_000):
        estimator = _fit(tool, task, reference, size)
        current = pd.read_parquet(cache / f"{task}-{size}.parquet")
        result[str(size)] = _estimate(tool, task, estimator, current, size)
    print(json.dumps(result))


def run_worker(python: str, tool: str, task: str, job: str, cache: Path) -> Any:
    # One thread each: on a shared machine LightGBM's and XGBoost's thread pools spin waiting
    # for each other (NannyML's DLE fit took 160-260 s here with its default threads).
    # NML_DISABLE_USAGE_LOGGING: NannyML otherwise tries to send usage analytics.
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "NML_DISABLE_USAGE_LOGGING": "1"}
    done = subprocess.run(
        [python, str(HERE), "--worker", tool, "--task", task, "--job", job,
         "--cache", str(cache)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {task} {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def nannyml_python(venv: Path) -> str:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing NannyML 0.13 into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *NANNYML_REQUIREMENTS],
                       check=True)
    return str(python)


# -- scoring ------------------------------------------------------------------------------

def realised(task: str, cache: Path, size: int) -> dict[str, list[float]]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    current = pd.read_parquet(cache / f"{task}-{size}.parquet")
    chunks = [current.iloc[i:i + size] for i in range(0, len(current), size)]
    if task == "classification":
        return {"accuracy": [float((c["label"] == c["y"]).mean()) for c in chunks],
                "roc_auc": [float(roc_auc_score(c["y"], c["score"])) for c in chunks]}
    errors = [c["y"] - c["pred"] for c in chunks]
    return {"mae": [float(e.abs().mean()) for e in errors],
            "rmse": [float(np.sqrt((e ** 2).mean())) for e in errors]}


def reference_values(task: str, cache: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    frame = pd.read_parquet(cache / f"{task}-reference.parquet")
    if task == "classification":
        return {"accuracy": float((frame["label"] == frame["y"]).mean()),
                "roc_auc": float(roc_auc_score(frame["y"], frame["score"]))}
    error = frame["y"] - frame["pred"]
    return {"mae": float(error.abs().mean()), "rmse": float(np.sqrt((error ** 2).mean()))}


def score(estimates: dict[str, list[float]], truth: list[float], relative: bool
          ) -> dict[str, float]:
    import numpy as np

    estimate = np.asarray(estimates["estimate"])
    real = np.asarray(truth)
    error = np.abs(estimate - real) / (real if relative else 1.0)
    lower = np.nan_to_num(np.asarray(estimates["lower"]), nan=-np.inf)
    upper = np.nan_to_num(np.asarray(estimates["upper"]), nan=np.inf)
    covered = (lower <= real) & (real <= upper)
    return {"error": float(error.mean()), "max_error": float(error.max()),
            "covered": int(covered.sum()), "chunks": int(real.size),
            "half_width": float(np.mean((upper - lower) / 2))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/shipyard-bench-estimation"))
    parser.add_argument("--nannyml-venv", type=Path, default=Path("/tmp/shipyard-bench-nannyml"))
    parser.add_argument("--worker", choices=["shipyard", "nannyml"])
    parser.add_argument("--task", choices=["classification", "regression"])
    parser.add_argument("--job", choices=["fit", "estimate"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.task, args.job, args.cache)
        return
    build_data(args.cache, args.rows)
    pythons = {"shipyard": sys.executable, "nannyml": nannyml_python(args.nannyml_venv)}
    tasks = ("classification", "regression")

    # Accuracy of the estimates (deterministic: one run each).
    quality: dict[str, dict[str, Any]] = {}
    for tool in pythons:
        quality[tool] = {task: run_worker(pythons[tool], tool, task, "estimate", args.cache)
                         for task in tasks}
    print("\nEstimates on covariate-shift data (Shipyard band 95%; NannyML +/- 3 sigma)")
    print(f"{'metric':<10}{'chunk':>8}  {'tool':<9}{'mean err':>10}{'max err':>10}"
          f"{'covered':>9}{'half-width':>12}{'naive err':>11}")
    for task in tasks:
        base = reference_values(task, args.cache)
        for size in (100_000, 5_000):
            truth = realised(task, args.cache, size)
            for metric in truth:
                relative = task == "regression"
                naive = score({"estimate": [base[metric]] * len(truth[metric]),
                               "lower": [0.0] * len(truth[metric]),
                               "upper": [0.0] * len(truth[metric])},
                              truth[metric], relative)["error"]
                for tool in pythons:
                    s = score(quality[tool][task][str(size)][metric], truth[metric], relative)
                    unit = "%" if relative else ""
                    scale = 100 if relative else 1
                    print(f"{metric:<10}{size:>8}  {tool:<9}"
                          f"{s['error'] * scale:>9.4f}{unit or ' '}"
                          f"{s['max_error'] * scale:>9.4f}{unit or ' '}"
                          f"{s['covered']:>5}/{s['chunks']:<3}{s['half_width']:>12.4f}"
                          f"{naive * scale:>10.4f}{unit or ' '}")

    # Fit on the 1M-row reference: time and peak memory, interleaved rounds.
    fits: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_ in range(args.repeat):
        order = list(pythons) if round_ % 2 == 0 else list(reversed(list(pythons)))
        for task in tasks:
            for tool in order:
                fits.setdefault((tool, task), []).append(
                    run_worker(pythons[tool], tool, task, "fit", args.cache))
    print(f"\nFit on {args.rows:,} reference rows (median of {args.repeat}; memory beyond "
          "the loaded data)")
    print(f"{'task':<16}{'tool':<10}{'seconds':>9}{'peak MB':>9}{'time ratio':>12}"
          f"{'memory ratio':>14}")
    for task in tasks:
        med = {tool: (statistics.median(f["seconds"] for f in fits[(tool, task)]),
                      statistics.median(f["peak_mb"] for f in fits[(tool, task)]))
               for tool in pythons}
        for tool in pythons:
            seconds, peak = med[tool]
            ratios = ""
            if tool == "shipyard":
                ratios = (f"{med['nannyml'][0] / seconds:>11.2f}x"
                          f"{peak / max(med['nannyml'][1], 1e-9):>13.2f}x")
            print(f"{task:<16}{tool:<10}{seconds:>9.2f}{peak:>9.0f}{ratios}")
    print("\nTargets (issue 19): accuracy error <= 0.005; coverage >= 8/10 at 5k and 100k; "
          "ROC AUC error <= naive; loss within 2%; fit >= 2x faster (time ratio) with <= 0.5x "
          "memory (memory ratio).")


if __name__ == "__main__":
    main()
