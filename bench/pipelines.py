"""Pipelines benchmark: Shipyard's local runner side by side with kfp.local, in one run.

Measures, on this machine and with trivial steps (so the time is all overhead):

- per-task overhead on a 50-step chain (each step reads the previous step's output),
- per-task overhead on a 100-wide fan-out (100 independent steps),
- the wall time of a fully cached rerun of the 50-step chain,

for Shipyard in process mode (each step in its own process), Shipyard in inline mode (steps
in the calling process) and ``kfp.local`` with ``SubprocessRunner(use_venv=False)``. Per-task
overhead is the run's wall time (of the whole ``run_pipeline`` call) divided by its number of
tasks.

In process mode Shipyard forks each step from a warm launcher that it keeps between the runs
of one process, as it would for a user running pipelines from a notebook or a worker; only
the first run of a process starts one. That first run is measured on its own too (the
launcher is closed before it), as "first run in a process": it is what a one-off script pays.

kfp is installed into its own virtualenv, ``bench/.venvs/kfp`` (ignored by git), the first
time; its steps run in that interpreter. By default kfp's components are built with
``install_kfp_package=False``: otherwise every kfp step first runs ``pip install kfp``, which
measures pip rather than the runner (``--kfp-pip`` measures that default too).

    python bench/pipelines.py [--repeat 5] [--kfp-repeat 3] [--skip-kfp] [--kfp-pip]

Targets (issue 3): Shipyard's per-task overhead at most 1/10 of kfp.local's in process mode,
under 20 ms in inline mode, a fully cached rerun of 50 steps under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KFP_VENV = HERE / ".venvs" / "kfp"
CHAIN = 50
FANOUT = 100

# -- Shipyard ----------------------------------------------------------------------------------


def _shipyard_pipelines() -> tuple[Any, Any]:
    from shipyard import dsl

    @dsl.component
    def add(a: int, b: int) -> int:
        return a + b

    @dsl.pipeline(name="bench-chain")
    def chain(start: int = 0) -> None:
        task = add(a=start, b=1)
        for _ in range(CHAIN - 1):
            task = add(a=task.output, b=1)

    @dsl.pipeline(name="bench-fanout")
    def fanout(start: int = 0) -> None:
        for i in range(FANOUT):
            add(a=start, b=i)

    return chain, fanout


class _Shipyard:
    """A fresh home, SQLite store and artifact store, like a first-time user's."""

    def __init__(self, root: Path) -> None:
        from shipyard.artifacts import open_artifact_store
        from shipyard.config import Settings
        from shipyard.context import RequestContext
        from shipyard.store import open_store

        uri = f"sqlite:///{root / 'shipyard.db'}"
        self.store = open_store(uri, cached=False)
        self.artifacts = open_artifact_store(str(root / "artifacts"), cached=False)
        self.settings = Settings.resolve(
            home=root, uri=uri, artifacts=str(root / "artifacts"), project="bench"
        )
        self.ctx = RequestContext(project="bench", actor="bench")

    def run(self, pipeline: Any, args: dict[str, Any], **kw: Any) -> float:
        from shipyard.pipelines import run_pipeline

        started = time.perf_counter()
        run = run_pipeline(
            self.store, self.artifacts, self.ctx, pipeline, args, settings=self.settings, **kw
        )
        elapsed = time.perf_counter() - started
        if run.state != "SUCCEEDED":
            raise RuntimeError(f"benchmark run ended {run.state}: {run.error}")
        return elapsed

    def close(self) -> None:
        self.store.dispose()


def measure_shipyard(repeat: int, first: int = 0) -> dict[str, list[float]]:
    chain, fanout = _shipyard_pipelines()
    results: dict[str, list[float]] = {}

    def sample(name: str, fn: Callable[[_Shipyard, int], float]) -> None:
        for i in range(first, first + repeat):
            with tempfile.TemporaryDirectory(prefix="sy-bench-") as tmp:
                sy = _Shipyard(Path(tmp))
                try:
                    results.setdefault(name, []).append(fn(sy, i))
                finally:
                    sy.close()

    def first_run(sy: _Shipyard, i: int) -> float:
        from shipyard.pipelines import _pool

        _pool.shutdown()  # as in a fresh process: this run starts the launcher, kept after
        return sy.run(chain, {"start": -1 - i}, enable_caching=False) / CHAIN

    sample("first.chain", first_run)
    for mode, inline in (("process", False), ("inline", True)):

        def per_task(pipeline: Any, tasks: int, inline: bool = inline) -> Callable[..., float]:
            def measure(sy: _Shipyard, i: int) -> float:
                # A new argument each time: no run may be served by an earlier one's cache.
                return sy.run(pipeline, {"start": i}, inline=inline, enable_caching=False) / tasks

            return measure

        def cached(sy: _Shipyard, i: int, inline: bool = inline) -> float:
            sy.run(chain, {"start": i}, inline=inline)
            return sy.run(chain, {"start": i}, inline=inline)

        sample(f"{mode}.chain", per_task(chain, CHAIN))
        sample(f"{mode}.fanout", per_task(fanout, FANOUT))
        sample(f"{mode}.cached", cached)

    return results


# -- kfp.local ---------------------------------------------------------------------------------

_KFP_SCRIPT = """
import json, os, sys, time
from kfp import dsl, local

CHAIN, FANOUT, INSTALL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
which, root, out = sys.argv[4], sys.argv[5], sys.argv[6]

@dsl.component(install_kfp_package=INSTALL)
def add(a: int, b: int) -> int:
    return a + b

@dsl.pipeline(name="bench-chain")
def chain(start: int = 0) -> int:
    task = add(a=start, b=1)
    for _ in range(CHAIN - 1):
        task = add(a=task.output, b=1)
    return task.output

@dsl.pipeline(name="bench-fanout")
def fanout(start: int = 0):
    for i in range(FANOUT):
        add(a=start, b=i)

def timed(fn, **kw):
    started = time.perf_counter()
    fn(**kw)
    return time.perf_counter() - started

result = {}
if which == "chain":
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
    result["chain"] = timed(chain, start=0) / CHAIN
elif which == "fanout":
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
    result["fanout"] = timed(fanout, start=0) / FANOUT
else:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root,
               enable_caching=True, cache_root=os.path.join(root, "cache"))
    first = timed(chain, start=0)
    result["cached"] = timed(chain, start=0)
    result["cached_first"] = first
with open(out, "w") as f:
    json.dump(result, f)
"""


def ensure_kfp() -> tuple[Path | None, str]:
    """The kfp virtualenv's interpreter (created and filled on first use), or why not."""
    python = KFP_VENV / "bin" / "python"
    probe = [str(python), "-c", "import kfp.local; print(kfp.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True)
        if done.returncode == 0:
            return python, done.stdout.strip()
    print(f"installing kfp into {KFP_VENV} ...", flush=True)
    try:
        venv.create(KFP_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "kfp"],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"could not install kfp into {KFP_VENV}: {detail.strip()[-600:]}"
    done = subprocess.run(probe, capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"kfp installed but `import kfp.local` fails: {done.stderr.strip()[-600:]}"
    return python, done.stdout.strip()


def measure_kfp(python: Path, repeat: int, install: bool) -> tuple[dict[str, list[float]], str]:
    results: dict[str, list[float]] = {}
    problems: list[str] = []
    suffix = ".pip" if install else ""
    with tempfile.TemporaryDirectory(prefix="kfp-bench-") as tmp:
        script = Path(tmp) / "bench_kfp.py"
        script.write_text(textwrap.dedent(_KFP_SCRIPT))
        for which in ("chain", "fanout", "cached"):
            for i in range(repeat):
                root = Path(tmp) / f"{which}-{i}"
                out = Path(tmp) / f"{which}-{i}.json"
                log = Path(tmp) / f"{which}-{i}.log"
                with open(log, "w") as sink:  # kfp.local logs every step at length
                    done = subprocess.run(
                        [str(python), str(script), str(CHAIN), str(FANOUT),
                         "1" if install else "0", which, str(root), str(out)],
                        stdout=sink, stderr=subprocess.STDOUT, cwd=tmp,
                    )  # fmt: skip
                if done.returncode != 0 or not out.exists():
                    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                    problems.append(f"kfp.local {which} failed:\n  " + "\n  ".join(tail))
                    break
                for key, value in json.loads(out.read_text()).items():
                    results.setdefault(f"kfp{suffix}.{key}", []).append(value)
    return results, "\n".join(problems)


# -- report ------------------------------------------------------------------------------------


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:,.1f} ms"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def report(results: dict[str, list[float]], kfp_note: str, install: bool) -> bool:
    med = {k: _median(v) for k, v in results.items()}
    rows = [("shipyard (process)", "process"), ("shipyard (inline)", "inline"),
            ("kfp.local (SubprocessRunner)", "kfp")]  # fmt: skip
    if install:
        rows.append(("kfp.local, default pip install kfp", "kfp.pip"))
    rows.insert(1, ("shipyard (process, first run)", "first"))
    print()
    print(f"{'runner':<36}{'chain/task':>14}{'fan-out/task':>14}{'cached rerun':>14}  runs")
    for label, key in rows:
        runs = len(results.get(f"{key}.chain", []))
        print(
            f"{label:<36}{_ms(med.get(f'{key}.chain')):>14}{_ms(med.get(f'{key}.fanout')):>14}"
            f"{_s(med.get(f'{key}.cached')):>14}  {runs}"
        )
    print(f"(medians; {CHAIN}-step chain, {FANOUT}-wide fan-out, cached rerun of the chain;")
    print(" first run: the chain run by a process that has no launcher yet)")
    if kfp_note:
        print(f"\nkfp.local: {kfp_note}")

    print("\nratios (kfp.local / shipyard per-task overhead):")
    for shape in ("chain", "fanout"):
        kfp = med.get(f"kfp.{shape}")
        for mode in ("process", "inline"):
            ours = med.get(f"{mode}.{shape}")
            ratio = f"{kfp / ours:,.1f}x" if kfp and ours else "n/a"
            print(f"  {shape:<7} {mode:<8} {ratio}")
    kfp_cached, ours_cached = med.get("kfp.cached"), med.get("process.cached")
    if kfp_cached and ours_cached:
        print(f"  cached rerun: {kfp_cached / ours_cached:,.1f}x")

    print("\ntargets:")
    ok = True
    for shape in ("chain", "fanout"):
        kfp, ours = med.get(f"kfp.{shape}"), med.get(f"process.{shape}")
        if kfp and ours:
            hit = ours <= kfp / 10
            ok &= hit
            verdict = "PASS" if hit else "FAIL"
            print(f"  {verdict} process {shape}: {_ms(ours)} <= kfp.local/10 = {_ms(kfp / 10)}")
        else:
            print(f"  ---- process {shape}: kfp.local not measured, no ratio")
        inline = med.get(f"inline.{shape}")
        hit = inline is not None and inline < 0.020
        ok &= hit
        print(f"  {'PASS' if hit else 'FAIL'} inline {shape}: {_ms(inline)} < 20 ms")
    for mode in ("process", "inline"):
        cached = med.get(f"{mode}.cached")
        hit = cached is not None and cached < 1.0
        ok &= hit
        print(f"  {'PASS' if hit else 'FAIL'} cached rerun ({mode}): {_s(cached)} < 1 s")
    return ok


def _merge(into: dict[str, list[float]], more: dict[str, list[float]]) -> None:
    for key, values in more.items():
        into.setdefault(key, []).extend(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per Shipyard figure")
    parser.add_argument("--kfp-repeat", type=int, default=3, help="samples per kfp figure")
    parser.add_argument("--skip-kfp", action="store_true", help="measure Shipyard only")
    parser.add_argument(
        "--kfp-pip", action="store_true",
        help="also measure kfp's default components, which pip install kfp in every step",
    )  # fmt: skip
    parser.add_argument("--json", help="also write every sample to this file")
    opts = parser.parse_args()

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores", flush=True)
    python: Path | None = None
    note = "skipped (--skip-kfp)"
    if not opts.skip_kfp:
        python, version = ensure_kfp()
        note = f"kfp {version}, SubprocessRunner(use_venv=False)"
        if python is None:
            note = f"cannot run here: {version}"
        else:
            print(f"kfp {version} from {python}", flush=True)
    # Rounds of one sample per figure, Shipyard's and kfp's in turn: the load of a shared
    # machine drifts, and the ratios should compare samples taken under the same load.
    results: dict[str, list[float]] = {}
    problems: list[str] = []
    for r in range(max(opts.repeat, 0 if python is None else opts.kfp_repeat)):
        print(f"round {r + 1}", flush=True)
        if r < opts.repeat:
            _merge(results, measure_shipyard(1, first=r))
        if python is not None and r < opts.kfp_repeat and not problems:
            found, problem = measure_kfp(python, 1, install=False)
            _merge(results, found)
            problems += [problem] if problem else []
    if python is not None and opts.kfp_pip and not problems:
        found, problem = measure_kfp(python, 1, install=True)
        _merge(results, found)
        problems += [problem] if problem else []
    note = "\n".join(problems) or note
    ok = report(results, note, opts.kfp_pip)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
