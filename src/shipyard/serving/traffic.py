"""Traffic splits: checking them, rescaling them when a model comes or goes, and the
weighted choice of the deployment that answers a request."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence

from shipyard.errors import InvalidArgument

TOTAL = 100


def check_split(split: Mapping[str, object], deployed: Sequence[str], field: str = "traffic"
                ) -> dict[str, int]:
    """``split`` as whole percentages over ``deployed`` (those it leaves out get 0).

    ``InvalidArgument`` naming the field for a key that is not deployed, a value that is not
    a whole number from 0 to 100, or a total other than 100.
    """
    clean: dict[str, int] = dict.fromkeys(deployed, 0)
    for key, value in split.items():
        if key not in clean:
            raise InvalidArgument(
                f"{field} names {key!r}, which is not deployed here: deployed models are "
                f"{list(deployed)}", field=f"{field}.{key}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TOTAL:
            raise InvalidArgument(f"{field}[{key!r}] must be a whole percentage from 0 to "
                                  f"100, got {value!r}", field=f"{field}.{key}")
        clean[key] = value
    total = sum(clean.values())
    if deployed and total != TOTAL:
        raise InvalidArgument(f"{field} must add up to 100, got {total}: {clean}",
                              field=field)
    return clean


def rescale(split: Mapping[str, int], total: int) -> dict[str, int]:
    """``split`` scaled to add up to ``total``, keeping its proportions (largest remainders
    get the rounding); all-zero splits are shared evenly."""
    if not split:
        return {}
    weights = dict(split) if any(split.values()) else dict.fromkeys(split, 1)
    whole = sum(weights.values())
    exact = {key: total * weight / whole for key, weight in weights.items()}
    out = {key: int(value) for key, value in exact.items()}
    left = total - sum(out.values())
    by_remainder = sorted(exact, key=lambda key: out[key] - exact[key])
    for key in by_remainder[:left]:
        out[key] += 1
    return out


class Router:
    """Picks a deployment for each request with probability proportional to its traffic."""

    def __init__(self, split: Mapping[str, int]) -> None:
        self.keys = [key for key, weight in split.items() if weight > 0]
        self.bounds = list(itertools.accumulate(split[key] for key in self.keys))

    def choose(self, draw: float) -> str:
        """The deployment for ``draw``, a uniform number in [0, 1)."""
        if not self.keys:
            raise InvalidArgument("no deployed model receives traffic", field="traffic")
        return self.keys[bisect.bisect_right(self.bounds, draw * self.bounds[-1])]
