"""Performance estimation's results: one ``ChunkEstimate`` per metric and chunk, gathered in
an ``EstimationResult`` (as a list, a DataFrame or JSON)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ChunkEstimate", "EstimationResult"]


@dataclass(frozen=True)
class ChunkEstimate:
    """One metric's estimate for one chunk of rows ``start`` to ``end`` (exclusive).

    ``lower``/``upper`` bound the band at the estimator's confidence level; ``realised`` is
    the metric computed from labels when the current data had them; ``reference`` is the
    metric realised on the reference data (the naive estimate). ``sampling_std`` and
    ``model_std`` are the band's two parts: the chunk's sampling noise and the estimation
    error between independently fitted models.
    """

    chunk: int
    start: int
    end: int
    metric: str
    estimate: float
    lower: float
    upper: float
    realised: float | None
    reference: float
    reliable: bool
    outside_share: float
    sampling_std: float
    model_std: float

    @property
    def rows(self) -> int:
        return self.end - self.start

    @property
    def covered(self) -> bool | None:
        """Whether the band holds the realised value (None without labels)."""
        if self.realised is None:
            return None
        return self.lower <= self.realised <= self.upper


@dataclass(frozen=True)
class EstimationResult:
    task: str
    confidence: float
    chunks: tuple[ChunkEstimate, ...]

    def metric(self, name: str) -> list[ChunkEstimate]:
        found = [chunk for chunk in self.chunks if chunk.metric == name]
        if not found:
            raise InvalidArgument(
                f"no metric {name!r}; this result has {sorted({c.metric for c in self.chunks})}",
                field="metric")
        return found

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**asdict(chunk), "rows": chunk.rows} for chunk in self.chunks]
        return pd.DataFrame(rows, columns=[
            "chunk", "start", "end", "rows", "metric", "estimate", "lower", "upper",
            "realised", "reference", "reliable", "outside_share", "sampling_std",
            "model_std"])

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "confidence": self.confidence,
                "chunks": [{key: _finite_or_none(value) for key, value in asdict(c).items()}
                           for c in self.chunks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
