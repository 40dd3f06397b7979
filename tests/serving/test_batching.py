"""Adaptive micro-batching in the replica: requests that queue up while it is busy are
answered together (one pass through the compiled trees), each with exactly the answer it
would get alone, and a bad request in a batch fails alone."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from shipyard.serving.replica import Server
from tests.serving.served import FEATURES, P, Served, train, xgb_frame, xgb_served

__all__ = ["xgb_served"]

SIGNATURE = {"columns": [{"name": n, "kind": "float"} for n in FEATURES]}


def test_queued_requests_are_answered_as_one_batch() -> None:
    model = train(1.0)
    rows = xgb_frame(20, seed=31).to_numpy()
    requests: list[Any] = [{"instances": [row.tolist()]} for row in rows]
    requests[5] = {"instances": [[True, *rows[5].tolist()[1:]]]}  # declined: answered alone

    async def run() -> tuple[list[dict[str, Any]], int]:
        server = Server(model, FEATURES, SIGNATURE)
        assert server.compiled is not None
        worker = asyncio.create_task(server.work(server.queue))
        loop = asyncio.get_running_loop()
        futures = []
        for request in requests:
            future: asyncio.Future[Any] = loop.create_future()
            server.queue.put_nowait((request, future))
            futures.append(future)
        answers = await asyncio.gather(*futures)
        worker.cancel()
        return list(answers), server.batches

    answers, batches = asyncio.run(run())
    assert batches == 1
    expected = model.get_booster().inplace_predict(rows.astype(np.float32))
    for i, answer in enumerate(answers):
        if i == 5:
            assert "error" in answer
            continue
        assert np.float32(answer["predictions"][0]) == expected[i]


def test_concurrent_requests_through_the_server_each_get_their_own_answer(
        xgb_served: Served) -> None:
    server = xgb_served.server
    rows = xgb_frame(48, seed=32)
    expected = xgb_served.model.predict(rows)

    def call(i: int) -> float:
        import httpx

        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": f"Bearer {server.token}"}) as http:
            answer = http.post(f"{P}/endpoints/xgb:predict",
                               json={"instances": [rows.iloc[i].tolist()]})
            assert answer.status_code == 200, answer.text
            value: float = answer.json()["predictions"][0]
            return value

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(call, range(len(rows))))
    assert np.array_equal(np.asarray(got, np.float32), expected)
