"""A step's artifacts on disk: its inputs copied out of the artifact store into its folder
before it runs, and what it wrote (output artifacts, its log) stored back after.

A step of a server-side run (``isolation``) runs as another user and may leave links in
its folder: its files are stored through a descriptor opened without following links
(``_isolation.open_output``), and an output artifact that is itself a link is refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from shipyard.dsl._artifacts import METADATA_ONLY
from shipyard.pipelines._isolation import StepIsolation, open_output
from shipyard.pipelines._messages import StepArtifact, StepInput, StepResult
from shipyard.pipelines._state import Inst, MissingOutput
from shipyard.pipelines.models import ArtifactOutput
from shipyard.pipelines.spec import ComponentSpec, canonical_json

log = logging.getLogger(__name__)


class StepFiles:
    """Moves one run's step artifacts between the artifact store and the steps' folders."""

    def __init__(self, artifacts: Any, isolation: StepIsolation | None) -> None:
        self.artifacts = artifacts
        self.isolation = isolation

    def materialise(self, root: Path, name: str, value: Any) -> StepInput:
        """Copy input ``name`` (an artifact, or a list of them) to ``root / name``."""
        if isinstance(value, list):
            return [self.materialise(root / name, str(i), v) for i, v in enumerate(value)]
        art: ArtifactOutput = value
        dest = root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if art.layout == "file":
            self.artifacts.get_file(art.digest, dest)
        elif art.layout == "tree":
            self.artifacts.get_tree(art.digest, dest)
        return StepArtifact(
            type=art.type, name=name, path=str(dest), uri=art.uri, metadata=art.metadata
        )

    def outputs(self, component: ComponentSpec, folder: Path,
                result: StepResult) -> dict[str, Any]:
        """The step's outputs: its artifacts stored from ``folder / "outputs"``, its
        parameters as it reported them. ``MissingOutput`` for an artifact it did not write."""
        outputs: dict[str, Any] = {}
        for name, out in component.outputs.items():
            if out.kind == "artifact":
                metadata = dict(result.metadata.get(name) or {})
                outputs[name] = self.store_output(
                    name, folder / "outputs" / name, out.type, metadata
                )
            else:
                outputs[name] = result.outputs.get(name)
        return outputs

    def store_output(
        self, name: str, path: Path, type_: str, metadata: dict[str, Any]
    ) -> ArtifactOutput:
        layout: Literal["file", "tree", "none"]
        if self.isolation is not None and path.is_symlink():
            # It could name a file only the worker may read (the step's user may not).
            raise MissingOutput(f"the step's output artifact {name!r} is a symlink: write "
                                "the file or folder itself")
        if path.is_file():
            blob = self.put_step_file(path)
            digest, size, layout = blob.digest, blob.size, "file"
        elif path.is_dir():
            tree = self.artifacts.put_tree(path)
            digest, size, layout = tree.digest, tree.size, "tree"
        elif type_ in METADATA_ONLY or metadata:
            blob = self.artifacts.put_bytes(canonical_json(metadata).encode())
            digest, size, layout = blob.digest, blob.size, "none"
        else:
            raise MissingOutput(
                f"the step wrote nothing to its output artifact {name!r} ({type_}): "
                f"write a file at {name}.path, or files under it as a folder"
            )
        uri = self.artifacts.uri(digest)
        return ArtifactOutput(
            type=type_, digest=digest, size=size, layout=layout, uri=uri, metadata=metadata
        )

    def store_log(self, inst: Inst) -> str | None:
        path = inst.log
        try:
            if path is None or path.stat().st_size == 0:
                return inst.info.log_digest
        except FileNotFoundError:
            return inst.info.log_digest
        try:
            digest: str = self.put_step_file(path).digest
        except OSError as exc:  # a link in its place (isolated steps): keep no log
            log.warning("the log of step %s was not stored: %s", inst.name, exc.strerror)
            return inst.info.log_digest
        return digest

    def put_step_file(self, path: Path) -> Any:
        """Store a file the step wrote, never through a link it put in its place."""
        if self.isolation is None:
            return self.artifacts.put_file(path)
        fd = open_output(path)
        try:
            return self.artifacts.put_file(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
