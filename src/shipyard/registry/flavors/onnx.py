"""ONNX models, run with onnxruntime (the ``onnx`` extra)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MissingDependency
from shipyard.registry.flavors._base import LoadOptions, Saved, model_file, module_of
from shipyard.registry.flavors._manifest import Manifest

FILE = "model.onnx"


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def save_file(source: Path, model_dir: Path) -> Saved:
    """Store an ``.onnx`` file as is: saving needs neither onnx nor onnxruntime."""
    shutil.copyfile(source, model_dir / FILE)
    return Saved("onnx", _version("onnx"), ("onnx", "onnxruntime"), {"file": FILE})


class OnnxPredictor:
    """Feeds a frame to the session: one 2-D float input, or one input per column."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    def predict(self, data: Any) -> Any:
        if len(self.inputs) == 1:
            feeds = {self.inputs[0]: np.asarray(data, dtype=np.float32)}
        else:
            # One input per feature (skl2onnx's convention for mixed-type tables): numbers
            # as float32 columns, anything else as strings.
            feeds = {}
            for name in self.inputs:
                column = np.asarray(data[name]).reshape(-1, 1)
                numeric = column.dtype.kind in "biuf"
                feeds[name] = column.astype(np.float32) if numeric else column.astype(str)
        return self.session.run(None, feeds)[0]


class OnnxFlavor:
    name = "onnx"

    def matches(self, obj: object) -> bool:
        return module_of(obj) == "onnx" and type(obj).__name__ == "ModelProto"

    def save(self, obj: Any, model_dir: Path) -> Saved:
        (model_dir / FILE).write_bytes(obj.SerializeToString())
        return Saved("onnx", _version("onnx"), ("onnx", "onnxruntime"), {"file": FILE})

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependency("onnxruntime", "onnx") from None
        path = model_file(model_dir, manifest, FILE)
        return OnnxPredictor(
            onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        )
