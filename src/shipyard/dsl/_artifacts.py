"""Artifact types a component reads and writes, with the Kubeflow Pipelines v2 surface.

An artifact object is what a step receives for an ``Input[...]`` or ``Output[...]``
parameter. ``.path`` is a local path: a step may use it as a file (``open(a.path, "w")``)
or as a folder (``a.path + "/data.csv"``), as on Vertex AI, where it is a GCS FUSE mount.
The folder is created the moment the path is extended, so both styles work unchanged.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar, TypeVar

__all__ = [
    "HTML",
    "Artifact",
    "ArtifactPath",
    "ClassificationMetrics",
    "Dataset",
    "Input",
    "InputPath",
    "Markdown",
    "Metrics",
    "Model",
    "Output",
    "OutputPath",
    "SlicedClassificationMetrics",
    "get_uri",
]


class ArtifactPath(str):
    """A ``str`` path that creates itself as a directory when a child path is built from it.

    ``path + "/data.csv"`` and ``os.path.join(path, "data.csv")`` both go through ``__add__``;
    opening the path itself as a file still works because nothing exists there yet.
    """

    __slots__ = ()

    def __add__(self, other: str) -> str:
        if isinstance(other, str) and other.startswith(("/", os.sep)):
            os.makedirs(str(self), exist_ok=True)
            return ArtifactPath(str.__add__(self, other))
        return str.__add__(self, other)


class Artifact:
    """A generic artifact: a local ``path``, a ``uri`` naming its stored copy, and ``metadata``."""

    schema_title: ClassVar[str] = "system.Artifact"

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = name or ""
        self.uri = uri or ""
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            return self.uri
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        self._path = ArtifactPath(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, uri={self.uri!r})"


class Model(Artifact):
    schema_title: ClassVar[str] = "system.Model"

    @property
    def framework(self) -> str:
        return str(self.metadata.get("framework", ""))

    @framework.setter
    def framework(self, value: str) -> None:
        self.metadata["framework"] = value


class Dataset(Artifact):
    schema_title: ClassVar[str] = "system.Dataset"


class HTML(Artifact):
    schema_title: ClassVar[str] = "system.HTML"


class Markdown(Artifact):
    schema_title: ClassVar[str] = "system.Markdown"


class Metrics(Artifact):
    """Scalar metrics kept in ``metadata``; nothing needs to be written to ``path``."""

    schema_title: ClassVar[str] = "system.Metrics"

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


class ClassificationMetrics(Artifact):
    """ROC curve and confusion matrix kept in ``metadata`` in the Vertex AI layout."""

    schema_title: ClassVar[str] = "system.ClassificationMetrics"

    def log_roc_data_point(self, fpr: float, tpr: float, threshold: float) -> None:
        roc = self.metadata.setdefault("confidenceMetrics", [])
        roc.append({"confidenceThreshold": threshold, "recall": tpr, "falsePositiveRate": fpr})

    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None:
        if not len(fpr) == len(tpr) == len(threshold):
            raise ValueError("fpr, tpr and threshold must have the same length")
        for point in zip(fpr, tpr, threshold, strict=True):
            self.log_roc_data_point(*point)

    def set_confusion_matrix_categories(self, categories: list[str]) -> None:
        self.metadata["confusionMatrix"] = {
            "annotationSpecs": [{"displayName": str(c)} for c in categories],
            "rows": [[0] * len(categories) for _ in categories],
        }

    def _matrix(self) -> dict[str, Any]:
        matrix = self.metadata.get("confusionMatrix")
        if not isinstance(matrix, dict):  # a usage error, not a wrong type passed in
            raise ValueError("call set_confusion_matrix_categories first")  # noqa: TRY004
        return matrix

    def _index(self, category: str) -> int:
        names = [spec["displayName"] for spec in self._matrix()["annotationSpecs"]]
        if category not in names:
            raise ValueError(f"unknown category {category!r}; categories are {names}")
        return names.index(category)

    def log_confusion_matrix_row(self, row_category: str, row: list[int]) -> None:
        rows = self._matrix()["rows"]
        if len(row) != len(rows):
            raise ValueError(f"row has {len(row)} values, expected {len(rows)}")
        rows[self._index(row_category)] = [int(v) for v in row]

    def log_confusion_matrix_cell(self, row_category: str, col_category: str, value: int) -> None:
        self._matrix()["rows"][self._index(row_category)][self._index(col_category)] = int(value)

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None:
        self.set_confusion_matrix_categories(categories)
        if len(matrix) != len(categories):
            raise ValueError(f"matrix has {len(matrix)} rows, expected {len(categories)}")
        for category, row in zip(categories, matrix, strict=True):
            self.log_confusion_matrix_row(category, row)


class SlicedClassificationMetrics(Artifact):
    schema_title: ClassVar[str] = "system.SlicedClassificationMetrics"

    def _slice(self, slice: str) -> ClassificationMetrics:
        data = self.metadata.setdefault(slice, {})
        metrics = ClassificationMetrics(metadata=data)
        metrics.metadata = data
        return metrics

    def log_roc_reading(self, slice: str, threshold: float, tpr: float, fpr: float) -> None:
        self._slice(slice).log_roc_data_point(fpr, tpr, threshold)

    def load_roc_readings(self, slice: str, readings: list[list[float]]) -> None:
        for threshold, tpr, fpr in readings:
            self.log_roc_reading(slice, threshold, tpr, fpr)

    def set_confusion_matrix_categories(self, slice: str, categories: list[str]) -> None:
        self._slice(slice).set_confusion_matrix_categories(categories)

    def log_confusion_matrix_row(self, slice: str, row_category: str, row: list[int]) -> None:
        self._slice(slice).log_confusion_matrix_row(row_category, row)

    def log_confusion_matrix_cell(
        self,
        slice: str,
        row_category: str,
        col_category: str,
        value: int,
    ) -> None:
        self._slice(slice).log_confusion_matrix_cell(row_category, col_category, value)

    def load_confusion_matrix(
        self,
        slice: str,
        categories: list[str],
        matrix: list[list[int]],
    ) -> None:
        self._slice(slice).log_confusion_matrix(categories, matrix)


ARTIFACT_TYPES: dict[str, type[Artifact]] = {
    cls.schema_title: cls
    for cls in (
        Artifact,
        Model,
        Dataset,
        HTML,
        Markdown,
        Metrics,
        ClassificationMetrics,
        SlicedClassificationMetrics,
    )
}
# Artifacts that keep their content in metadata: writing nothing to the path is fine.
METADATA_ONLY = frozenset(
    {"system.Metrics", "system.ClassificationMetrics", "system.SlicedClassificationMetrics"}
)


class _InputMarker:
    """Marks an ``Annotated`` parameter as an input artifact."""


class _OutputMarker:
    """Marks an ``Annotated`` parameter as an output artifact."""


_T = TypeVar("_T")
Input = Annotated[_T, _InputMarker]
Output = Annotated[_T, _OutputMarker]


class _PathMarker:
    """A parameter that receives a local path, as Kubeflow's ``InputPath``/``OutputPath``.

    ``type`` is an artifact class (``Dataset``) or name (``"Dataset"``), or a parameter type
    (``str``, ``int``, ... or its name such as ``"String"``); anything else (an unknown name,
    ``None``) is a generic artifact, as on Kubeflow.
    """

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.type == self.type  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), repr(self.type)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type!r})"


class InputPath(_PathMarker):
    """``data: InputPath("Dataset")``: the function receives the local path of the input
    (an artifact's file or folder; a parameter's value as text in a file)."""


class OutputPath(_PathMarker):
    """``model: OutputPath("Model")``: the function receives a path to write the output to;
    ``OutputPath(int)`` and the like are output parameters, read back from the file's text."""


# The folder a running step's returned artifacts go to (``get_uri``); set by the executor.
TASK_ROOT: ContextVar[str | None] = ContextVar("shipyard_task_root", default=None)


def get_uri(suffix: str = "Output") -> str:
    """A location for an artifact the running step creates and returns (Kubeflow's
    ``dsl.get_uri``): ``Dataset(uri=dsl.get_uri())`` for a ``-> Dataset`` component, or
    ``dsl.get_uri("model")`` for a NamedTuple's ``model`` field. Only inside a step."""
    root = TASK_ROOT.get()
    if root is None:
        raise RuntimeError("dsl.get_uri can only be called inside a running pipeline step")
    if not suffix or os.sep in suffix or suffix in (".", ".."):
        raise ValueError(f"dsl.get_uri takes a plain name as suffix, got {suffix!r}")
    return os.path.join(root, suffix)
