"""The model in a Ray Serve replica (``runtime="ray"``): imported on the cluster's nodes only.

``RayModel`` is the Ray Serve deployment's class. Its constructor gets the version's files
as a tar (the folder the server's bridge took from its model cache) and loads them with
the server's trust settings, every file checked against the version's manifest; so a node
needs ``shipyard`` and the model's libraries, no artifact store, database or shared disk.
It answers exactly as a local replica does (``replica.Server``: the signature check that
names field and row, the compiled trees, explanations), and requests that reach one replica
together are answered as one batch (``serve.batch``, never waiting for more), as a local
replica's adaptive micro-batching does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ray import serve
from shipyard.serving.replica import MAX_BATCH


class RayModel:
    """One deployed model version in a Ray Serve replica."""

    def __init__(self, model_tar: bytes, version: dict[str, Any],
                 options: dict[str, Any]) -> None:
        from shipyard.pipelines._ray import _unpack
        from shipyard.registry import flavors
        from shipyard.registry.loaded import load_directory
        from shipyard.registry.models import ModelVersion
        from shipyard.serving.instances import signature_names
        from shipyard.serving.replica import Server

        about = ModelVersion.model_validate(version)
        self.folder = Path(tempfile.mkdtemp(prefix="shipyard-serve-model-"))
        _unpack(model_tar, str(self.folder))
        loaded = load_directory(about, self.folder, flavors.LoadOptions(
            trusted_types=tuple(options["trusted_types"]),
            allow_pickle=bool(options["allow_pickle"]),
            trusted_digests=frozenset(options["trusted_digests"])), None)
        signature = version.get("signature")
        self.server = Server(loaded, signature_names(signature), signature)

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.0)
    async def _answer(self, requests: list[Any]) -> list[dict[str, Any]]:
        try:
            return self.server.answer_many(requests)
        except Exception as exc:  # a bug answers its requests, as in a local replica
            from shipyard.errors import FailedPrecondition
            from shipyard.serving import wire

            failed = wire.error_message(FailedPrecondition(
                f"the replica failed: {type(exc).__name__}: {exc}"[:1000]))
            return [failed] * len(requests)

    async def __call__(self, request: Any) -> dict[str, Any]:
        """One ``wire`` message (``{"instances": ...}``, or ``"op": "explain"``) and its
        answer (``{"predictions": ...}`` or ``{"error": ...}``), as a local replica's."""
        answer: dict[str, Any] = await self._answer(request)
        return answer

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)
