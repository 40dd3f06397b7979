"""Online prediction latency and throughput: Shipyard vs MLServer 1.7 vs `mlflow models serve`.

The workload of issue 18: a 100-tree XGBoost regressor on 10 float features, one-row
requests, driven by ``wrk`` (``apt-get install -y wrk``) at 1, 16 and 64 connections.

- **Shipyard**: ``shipyard server`` (the CLI command as deployed, auth on: every request
  carries the admin token), the model registered twice and deployed to one endpoint with a
  90/10 traffic split, each version in its own replica process; Vertex ``:predict`` with
  ``{"instances": [[...10 floats...]]}``.
- **MLServer 1.7** with ``mlserver-xgboost``, in its own virtualenv under ``/tmp``,
  ``parallel_workers=0`` (inline, its best setting here) and ``OMP_NUM_THREADS=1``; the Open
  Inference Protocol ``/v2/models/m/infer`` with one ``[1, 10]`` FP32 tensor.
- **mlflow models serve** (MLflow 3.x, its own virtualenv, ``--env-manager local``, one
  worker): ``/invocations`` with ``{"inputs": [[...]]}``.

The same model file serves everywhere (XGBoost's UBJ). Rounds interleave the servers; each
figure is the median over rounds; the table prints each server's figures and Shipyard's
ratios to the others.

    python bench/serving.py [--rounds 3] [--duration 10] [--only shipyard]

Targets (issue 18): 1 connection p50 <= 0.8 ms; 16 connections >= 1,800 req/s with p99
<= 16 ms; 64 connections >= 1,700 req/s with p99 <= 80 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

FEATURES = [f"f{i}" for i in range(10)]
ROW = [0.5, -1.25, 3.0, 0.0, 2.5, -0.75, 1.0, 4.25, -2.0, 0.125]
CONNECTIONS = (1, 16, 64)
TARGETS = {1: "p50 <= 0.8 ms", 16: ">= 1,800 req/s, p99 <= 16 ms",
           64: ">= 1,700 req/s, p99 <= 80 ms"}
VENVS = Path("/tmp/shipyard-bench-serving")


@dataclass
class Target:
    name: str
    url: str
    body: str
    headers: dict[str, str]


@dataclass
class Figure:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float = 180.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not come up in {seconds:g} s")


def train(workdir: Path) -> tuple[object, np.ndarray, Path]:
    import pandas as pd
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(5_000, 10)), columns=FEATURES)
    y = x.to_numpy() @ rng.normal(size=10) + rng.normal(scale=0.1, size=len(x))
    model = xgb.XGBRegressor(n_estimators=100, max_depth=6, n_jobs=1)
    model.fit(x, y)
    path = workdir / "model.ubj"
    model.get_booster().save_model(str(path))
    return model, x, path


# -- Shipyard ------------------------------------------------------------------------------

@contextmanager
def shipyard_server(workdir: Path, model: object, example: object) -> Iterator[Target]:
    import pandas as pd

    home = workdir / "shipyard"
    env = {**os.environ, "SHIPYARD_HOME": str(home),
           "SHIPYARD_URI": f"sqlite:///{home}/shipyard.db",
           "SHIPYARD_ARTIFACTS": str(home / "artifacts"), "SHIPYARD_PROJECT": "bench"}
    code = ("import os, pandas as pd, xgboost as xgb, shipyard as sy\n"
            "m = xgb.XGBRegressor(); m.load_model(os.environ['MODEL'])\n"
            "x = pd.read_parquet(os.environ['EXAMPLE'])\n"
            "sy.register_model('bench', m, input_example=x)\n"
            "sy.register_model('bench', m, input_example=x)\n")
    assert isinstance(example, pd.DataFrame)
    example.head(20).to_parquet(workdir / "example.parquet")
    sklearn_path = workdir / "model.json"
    model.save_model(str(sklearn_path))  # type: ignore[attr-defined]
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**env, "MODEL": str(sklearn_path),
                        "EXAMPLE": str(workdir / "example.parquet")})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "server", "--port", str(port),
         "--no-worker"], env={k: v for k, v in env.items() if k != "SHIPYARD_URI"} | {
            "SHIPYARD_URI": env["SHIPYARD_URI"]},
        stdout=subprocess.DEVNULL, stderr=open(workdir / "shipyard.log", "wb"),
        start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/api/v1/health")
        from shipyard.security.credentials import read_credentials

        token = read_credentials(home)
        auth = {"Authorization": f"Bearer {token}"}
        p = f"{url}/api/v1/projects/bench/endpoints"
        with httpx.Client(headers=auth, timeout=300) as http:
            http.post(p, json={"name": "bench"}).raise_for_status()
            http.post(f"{p}/bench/deployments",
                      json={"model": "bench", "version": 1}).raise_for_status()
            http.post(f"{p}/bench/deployments",
                      json={"model": "bench", "version": 2,
                            "traffic_percentage": 10}).raise_for_status()
            check = http.post(f"{p}/bench:predict", json={"instances": [ROW]})
            check.raise_for_status()
        yield Target("shipyard", f"{p}/bench:predict",
                     json.dumps({"instances": [ROW]}),
                     {**auth, "Content-Type": "application/json"})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


# -- MLServer ------------------------------------------------------------------------------

def venv(name: str, packages: list[str]) -> Path:
    root = VENVS / name
    python = root / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


@contextmanager
def mlserver(workdir: Path, model_path: Path) -> Iterator[Target]:
    python = venv("mlserver", ["mlserver==1.7.*", "mlserver-xgboost==1.7.*"])
    folder = workdir / "mlserver"
    (folder / "m").mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, folder / "m" / "model.ubj")
    port, grpc, metrics = free_port(), free_port(), free_port()
    (folder / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": grpc, "metrics_port": metrics,
        "parallel_workers": 0, "debug": False, "metrics_endpoint": None}))
    (folder / "m" / "model-settings.json").write_text(json.dumps({
        "name": "m", "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": "./model.ubj"}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([str(python.parent / "mlserver"), "start", str(folder)],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=open(workdir / "mlserver.log", "wb"),
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/v2/models/m/ready")
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32",
                                       "data": ROW}]})
        httpx.post(f"{url}/v2/models/m/infer", content=body,
                   headers={"Content-Type": "application/json"}).raise_for_status()
        yield Target("mlserver", f"{url}/v2/models/m/infer", body,
                     {"Content-Type": "application/json"})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


# -- mlflow models serve -------------------------------------------------------------------

@contextmanager
def mlflow_server(workdir: Path, model: object) -> Iterator[Target]:
    python = venv("mlflow", ["mlflow==3.*", "xgboost-cpu", "pandas"])
    saved = workdir / "mlflow-model"
    if not saved.exists():
        model_json = workdir / "mlflow-source.json"
        model.save_model(str(model_json))  # type: ignore[attr-defined]
        code = ("import sys, xgboost as xgb, mlflow.xgboost\n"
                "m = xgb.XGBRegressor(); m.load_model(sys.argv[1])\n"
                "mlflow.xgboost.save_model(m, sys.argv[2])\n")
        subprocess.run([str(python), "-c", code, str(model_json), str(saved)], check=True)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{python.parent}:{os.environ['PATH']}"}
    server = subprocess.Popen([str(python.parent / "mlflow"), "models", "serve", "-m",
                               str(saved), "-p", str(port), "--env-manager", "local",
                               "-w", "1"],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=open(workdir / "mlflow.log", "wb"),
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/ping")
        body = json.dumps({"inputs": [ROW]})
        httpx.post(f"{url}/invocations", content=body,
                   headers={"Content-Type": "application/json"}).raise_for_status()
        yield Target("mlflow", f"{url}/invocations", body,
                     {"Content-Type": "application/json"})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


# -- wrk -----------------------------------------------------------------------------------

def wrk(target: Target, connections: int, duration: float, workdir: Path) -> Figure:
    script = workdir / f"{target.name}.lua"
    headers = "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
                      for k, v in target.headers.items())
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(target.body)}\n{headers}')
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
         "--latency", "-s", str(script), target.url],
        check=True, capture_output=True, text=True).stdout
    return parse_wrk(out)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> Figure:
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    if not (p50 and p99 and rps):
        raise ValueError(f"cannot read wrk's output:\n{out}")
    return Figure(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--only", action="append", choices=["shipyard", "mlserver", "mlflow"])
    parser.add_argument("--connections", type=int, action="append")
    args = parser.parse_args()
    names = args.only or ["shipyard", "mlserver", "mlflow"]
    connections = tuple(args.connections or CONNECTIONS)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    model, example, model_path = train(workdir)
    starters = {"shipyard": lambda: shipyard_server(workdir, model, example),
                "mlserver": lambda: mlserver(workdir, model_path),
                "mlflow": lambda: mlflow_server(workdir, model)}
    results: dict[str, dict[int, list[Figure]]] = {n: {c: [] for c in connections}
                                                   for n in names}
    from contextlib import ExitStack

    print(f"load average at the start (1, 5, 15 min): {_load()}", flush=True)
    with ExitStack() as stack:
        targets = {name: stack.enter_context(starters[name]()) for name in names}
        for name in names:  # warm up
            wrk(targets[name], 4, 2, workdir)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else list(reversed(names))
            for conns in connections:
                for name in order:
                    figure = wrk(targets[name], conns, args.duration, workdir)
                    results[name][conns].append(figure)
                    print(f"round {round_ + 1} {name:9s} c={conns:<3d} {figure.rps:9.0f} req/s "
                          f"p50 {figure.p50_ms:7.2f} ms p99 {figure.p99_ms:8.2f} ms "
                          f"errors {figure.errors}", flush=True)
    report(results, connections)
    print(f"load average at the end (1, 5, 15 min): {_load()}")
    shutil.rmtree(workdir, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(results: dict[str, dict[int, list[Figure]]], connections: tuple[int, ...]) -> None:
    def med(name: str, conns: int) -> Figure:
        figures = results[name][conns]
        return Figure(statistics.median(f.rps for f in figures),
                      statistics.median(f.p50_ms for f in figures),
                      statistics.median(f.p99_ms for f in figures),
                      sum(f.errors for f in figures))

    print("\nmedians over rounds")
    print(f"{'server':10s} {'conns':>5s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'errors':>6s}  target")
    for conns in connections:
        for name in results:
            f = med(name, conns)
            target = TARGETS.get(conns, "") if name == "shipyard" else ""
            print(f"{name:10s} {conns:5d} {f.rps:9.0f} {f.p50_ms:8.2f} {f.p99_ms:8.2f} "
                  f"{f.errors:6d}  {target}")
    if "shipyard" in results:
        for other in (n for n in results if n != "shipyard"):
            for conns in connections:
                s, o = med("shipyard", conns), med(other, conns)
                print(f"shipyard/{other} c={conns}: throughput x{s.rps / o.rps:.2f}, "
                      f"p50 x{s.p50_ms / o.p50_ms:.2f}, p99 x{s.p99_ms / o.p99_ms:.2f}")


if __name__ == "__main__":
    main()
