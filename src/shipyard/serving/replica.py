"""A replica: one process serving one deployed model version (``python -m
shipyard.serving.replica``), started by the server's supervisor (``replicas``).

It reads one JSON line on stdin (the version, the socket path, the home, the artifact
store and the trust settings), loads the version through the shared model cache
(``registry.cache``, every file checked against the version's tree digest), listens on the
Unix socket and prints ``ready`` (or one JSON line with the error, then exits 3). Then it
answers ``wire`` frames one at a time. It exits when its stdin closes: the server that
started it is gone, so nothing else would send it work.

Its environment comes from the supervisor with one thread for OpenMP and BLAS: a replica
answers one request at a time, and XGBoost's default of a thread per core made two
processes on two cores twenty times slower.

Requests that arrive while the replica is busy are answered together (adaptive
micro-batching, at most ``MAX_BATCH`` requests, never waiting for more): the plainly numeric
ones of a compiled model go through the trees as one matrix, so throughput grows with
concurrency. Plainly numeric instances skip pandas (``compiled.FastInput``), and an XGBoost
regressor is compiled to NumPy arrays for small batches (``compiled.compile_xgboost``,
bit-identical to XGBoost or not used); anything else, and every input the fast path
declines, takes the general path (``instances.predict``: the signature check that names
field and row).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from shipyard.errors import FailedPrecondition, ShipyardError
from shipyard.serving import wire
from shipyard.serving.compiled import CompiledTrees, FastInput, compile_xgboost
from shipyard.serving.instances import predict, signature_names, to_json, to_records

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
FAILED_TO_LOAD = 3
# Requests answered together at most: what queued up while the previous batch ran.
MAX_BATCH = 64


class Server:
    def __init__(self, model: Any, names: list[str] | None,
                 signature: dict[str, Any] | None = None) -> None:
        self.model = model
        self.names = names
        self.fast_input = FastInput.from_signature(signature) if names else None
        self.compiled: CompiledTrees | None = None
        self.explainers: dict[tuple[str, Any], Any] = {}
        self.max_batch = max(1, int(os.environ.get("SHIPYARD_SERVING_MAX_BATCH", MAX_BATCH)))
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()
        self.batches = 0  # answered (for tests: fewer than requests under concurrency)
        if self.fast_input is not None and names:
            self.compiled = compile_xgboost(getattr(model, "model", model), names,
                                            _example_matrix(model, names))

    def answer(self, request: Any) -> dict[str, Any]:
        try:
            if not isinstance(request, dict):
                raise FailedPrecondition("malformed request from the server")
            instances = request.get("instances")
            if request.get("op") == "explain":
                return self.explain(instances, request.get("method"), request.get("path_count"))
            if self.compiled is not None and self.fast_input is not None:
                matrix = self.fast_input.matrix(instances)
                if matrix is not None:
                    return {"predictions": to_json(self.compiled.predict(matrix))}
            return {"predictions": predict(self.model, instances, self.names)}
        except ShipyardError as exc:
            return wire.error_message(exc)

    def explain(self, instances: Any, method: Any, path_count: Any) -> dict[str, Any]:
        """Predictions and one Vertex attribution dict per instance (``serving.explain``),
        the explainer kept per (method, path count): its baseline and TreeSHAP's tables are
        built once."""
        import pandas as pd

        from shipyard.serving.explain import Explainer

        records = to_records(instances, self.names)
        predictions = predict(self.model, records, self.names)
        settings = (str(method or "auto"), 10 if path_count is None else path_count)
        explainer = self.explainers.get(settings)
        if explainer is None:
            explainer = Explainer(self.model, method=settings[0], path_count=settings[1])
            self.explainers[settings] = explainer
        attributions = explainer.explain(pd.DataFrame.from_records(records))
        return {"predictions": predictions,
                "explanations": [{"attributions": [a]} for a in attributions]}

    # -- adaptive micro-batching ---------------------------------------------------------

    def answer_many(self, requests: list[Any]) -> list[dict[str, Any]]:
        """Answers for requests that arrived together: the plainly numeric predictions of a
        compiled model go through the trees as one matrix, the rest one by one."""
        answers: list[dict[str, Any] | None] = [None] * len(requests)
        if self.compiled is not None and self.fast_input is not None and len(requests) > 1:
            taken: list[tuple[int, Any]] = []
            for i, request in enumerate(requests):
                if isinstance(request, dict) and request.get("op") in (None, "predict"):
                    matrix = self.fast_input.matrix(request.get("instances"))
                    if matrix is not None:
                        taken.append((i, matrix))
            if len(taken) > 1:
                import numpy as np

                output = self.compiled.predict(np.concatenate([m for _, m in taken]))
                start = 0
                for i, matrix in taken:
                    end = start + len(matrix)
                    answers[i] = {"predictions": to_json(output[start:end])}
                    start = end
        return [answer if answer is not None else self.answer(request)
                for answer, request in zip(answers, requests, strict=True)]

    async def work(self, queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]]) -> None:
        """Take what has queued up (at least one request, at most ``max_batch``, never
        waiting for more) and answer it as one batch."""
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < self.max_batch:
                batch.append(queue.get_nowait())
            requests = [request for request, _ in batch]
            self.batches += 1
            try:
                answers = self.answer_many(requests)
            except Exception as exc:  # a bug must not leave the waiting requests hanging
                failed = wire.error_message(FailedPrecondition(
                    f"the replica failed: {type(exc).__name__}: {exc}"[:1000]))
                answers = [failed] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                request = await wire.read_frame(reader)
                future: asyncio.Future[Any] = loop.create_future()
                self.queue.put_nowait((request, future))
                writer.write(wire.encode(await future))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def _example_matrix(model: Any, names: list[str]) -> Any:
    """The model's input example as a float matrix (probe rows for the compiled trees)."""
    try:
        example = model.input_example()
        return None if example is None else example[names].to_numpy(dtype="float64")
    except Exception:  # no example, or not numeric: the other probe rows suffice
        return None


def load(config: dict[str, Any]) -> Any:
    from shipyard.artifacts import open_artifact_store
    from shipyard.registry import flavors
    from shipyard.registry.cache import cache_root, load_cached
    from shipyard.registry.flavors.pickle import trust_list
    from shipyard.registry.models import ModelVersion

    version = ModelVersion.model_validate(config["version"])
    artifacts = open_artifact_store(config["artifacts"], cached=False)
    options = flavors.LoadOptions(
        trusted_types=tuple(config.get("trusted_types", ())),
        allow_pickle=True,  # only digests the server's own settings trust (trust_list)
        trusted_digests=trust_list(tuple(config.get("trusted_digests", ())), None),
    )

    def fetch(version: ModelVersion, target: Path) -> None:
        artifacts.get_tree(version.tree_digest, target, durable=False)

    return load_cached(version, cache_root(Path(config["home"])), fetch, options)


async def serve(config: dict[str, Any]) -> None:
    try:
        model = load(config)
    except Exception as exc:
        message = exc.message if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
        sys.stdout.write(json.dumps({"error": message[:2000]}) + "\n")
        sys.stdout.flush()
        os._exit(FAILED_TO_LOAD)
    signature = config["version"].get("signature")
    server = Server(model, signature_names(signature), signature)
    # The model, its libraries and the compiled trees live as long as the replica: frozen,
    # so collections walk only what requests make (a full one stalled answers for tens of
    # milliseconds).
    gc.collect()
    gc.freeze()
    worker = asyncio.create_task(server.work(server.queue))
    listener = await asyncio.start_unix_server(server.handle, path=config["socket"])
    os.chmod(config["socket"], 0o600)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    async with listener:
        await listener.serve_forever()
    worker.cancel()


def _exit_with_parent() -> None:
    sys.stdin.buffer.read()  # returns at end of file: the server closed the pipe or died
    os._exit(0)


def main() -> None:
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    config = json.loads(sys.stdin.buffer.readline())
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the standard loop works, a little slower
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


if __name__ == "__main__":
    main()
