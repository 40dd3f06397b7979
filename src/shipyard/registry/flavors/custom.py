"""Custom predictor classes: code by reference, files by content, nothing pickled.

A predictor class has a no-argument constructor, ``load(artifacts_dir)`` and
``predict(instances)``, and may have ``preprocess(instances)`` and
``postprocess(predictions)``. The registry stores the class's importable
``module:qualname`` and a copy of its artifacts directory; loading imports the class, which
must therefore be installed wherever the model is loaded.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption, FailedPrecondition, InvalidArgument
from shipyard.registry.flavors._base import LoadOptions, Saved
from shipyard.registry.flavors._manifest import Manifest

ARTIFACTS = "artifacts"


@dataclass(frozen=True)
class CustomPredictor:
    """What to register for a custom predictor: its class and its artifacts directory.

    >>> register_model(store, artifacts, ctx, "lead-scoring",
    ...                CustomPredictor(LeadScoringPredictor, artifacts="model_dir"))
    """

    predictor: type
    artifacts: str | Path | None = None


def class_path(cls: type) -> str:
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise InvalidArgument(
            f"{qualname} must be importable to be loaded elsewhere: define it in a module "
            "(not in __main__ or inside a function)",
            field="model",
        )
    for method in ("load", "predict"):
        if not callable(getattr(cls, method, None)):
            raise InvalidArgument(
                f"{qualname} has no {method}() method: a predictor class needs "
                "load(artifacts_dir) and predict(instances)",
                field="model",
            )
    if import_class(f"{module}:{qualname}") is not cls:
        raise InvalidArgument(f"{module}:{qualname} does not import back to {qualname}")
    return f"{module}:{qualname}"


def import_class(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise FailedPrecondition(
            f"cannot import the predictor class {path}: {exc}; install the package that defines it"
        ) from None
    return target


class CustomModel:
    """A loaded predictor, called as the class's author intended."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance

    def predict(self, data: Any) -> Any:
        pre = getattr(self.instance, "preprocess", None)
        post = getattr(self.instance, "postprocess", None)
        inputs = pre(data) if callable(pre) else data
        outputs = self.instance.predict(inputs)
        return post(outputs) if callable(post) else outputs


class CustomFlavor:
    name = "custom"

    def matches(self, obj: object) -> bool:
        return isinstance(obj, CustomPredictor)

    def save(self, obj: Any, model_dir: Path) -> Saved:
        spec: CustomPredictor = obj
        path = class_path(spec.predictor)
        target = model_dir / ARTIFACTS
        if spec.artifacts is not None:
            source = Path(spec.artifacts)
            if not source.is_dir():
                raise InvalidArgument(f"artifacts {source} is not a directory", field="artifacts")
            # Links are copied as the files they point to; nothing outside is referenced.
            shutil.copytree(source, target, symlinks=False)
        else:
            target.mkdir()
        module = path.partition(":")[0].split(".", 1)[0]
        return Saved("python", _dist_version(module), (), {"class": path, "artifacts": ARTIFACTS})

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        path = str(manifest.options.get("class", ""))
        if ":" not in path:
            raise DataCorruption(f"malformed predictor class reference {path!r}")
        cls = import_class(path)
        instance = cls()
        artifacts_dir = model_dir / ARTIFACTS
        artifacts_dir.mkdir(exist_ok=True)  # empty directories are not stored in a tree
        loaded = instance.load(str(artifacts_dir))
        # Seed 002's predictor returns self from load(); others return None.
        return CustomModel(
            loaded if loaded is not None and hasattr(loaded, "predict") else instance
        )


def _dist_version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except (metadata.PackageNotFoundError, ValueError):
        return "unknown"
