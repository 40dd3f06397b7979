"""Registering the quickstart's model exactly once, even across crashes and reruns.

A pipeline step can be killed after ``register_model`` committed but before the runner
recorded the step as done; the rerun then executes the step again. To keep that from
creating a second version of the same model, each version carries the sha256 of the packaged
model's manifest (which lists every file's digest) as the ``candidate`` label, and the
lookup-then-register runs under an exclusive file lock, so a step left running by a killed
runner and the rerun's step cannot both register.

Everything goes through the public SDK, which a pipeline step finds configured for its run's
project; ``sy.register_model`` links the version to the step in the lineage graph.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.config import Settings
from shipyard.errors import NotFound
from shipyard.registry.flavors import MANIFEST_NAME

if TYPE_CHECKING:
    from shipyard.registry import ModelVersion

CANDIDATE_LABEL = "candidate"
ALIAS = "production"


@dataclass(frozen=True)
class Outcome:
    version: int
    semver: str
    promoted: bool
    reason: str
    production_version: int


def candidate_key(model_dir: str | os.PathLike[str]) -> str:
    """The packaged model's identity: the digest of its manifest."""
    return hashlib.sha256(Path(model_dir, MANIFEST_NAME).read_bytes()).hexdigest()


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """An exclusive lock the kernel drops when its holder dies, however it dies."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def register_and_promote(
    model_dir: str | os.PathLike[str],
    name: str,
    *,
    run_id: str | None,
    metrics: Mapping[str, float],
) -> Outcome:
    """Register ``model_dir`` as a version of ``name`` unless it already is one, then let
    ``promote_if_better`` decide on RMSE whether it becomes ``production``."""
    import shipyard as sy

    key = candidate_key(model_dir)
    home = Settings.resolve().home
    with exclusive(home / "locks" / f"register-{name}.lock"):
        version = _find(name, key)
        if version is None:
            # The step's execution is the version's producer in the lineage graph (inputs:
            # the packaged model and its metrics); the evaluation run is named in a label
            # rather than passed as ``run=``, which would add a second producer with no
            # inputs and hide the path back to the data.
            labels = {CANDIDATE_LABEL: key, "framework": "xgboost"}
            if run_id:
                labels["evaluation_run"] = run_id
            version = sy.register_model(
                name,
                str(model_dir),
                description="lead scoring: XGBoost on encoded lead features (quickstart)",
                labels=labels,
                metrics=dict(metrics),
            )
        decision = sy.promote_if_better(name, version.version, metric="rmse", mode="min",
                                        alias=ALIAS)  # fmt: skip
    current = sy.get_model_version(name, version=version.version)
    production = sy.get_model_version(name, alias=ALIAS)
    return Outcome(
        version=current.version,
        semver=current.semver or "",
        promoted=production.version == current.version,
        reason=decision.reason,
        production_version=production.version,
    )


def register_if_better(
    model_dir: str | os.PathLike[str],
    name: str,
    *,
    run_id: str | None,
    metrics: Mapping[str, float],
    champion: int,
    champion_rmse: float,
) -> Outcome:
    """The closed loop's register step: register ``model_dir`` (once) only if its RMSE beat
    ``champion_rmse``, the champion's on the same held-out leads; never move ``production``
    (the canary the registration starts does, if the candidate holds up). A candidate that
    did not win is not registered: version 0."""
    import shipyard as sy

    rmse = float(metrics["rmse"])
    production = _production(name)
    if not rmse < champion_rmse:
        return Outcome(version=0, semver="", promoted=False,
                       reason=(f"champion {name}:{champion} keeps its place: rmse "
                               f"{champion_rmse:.6g} on the fresh leads, the candidate's "
                               f"{rmse:.6g}"),
                       production_version=production)
    key = candidate_key(model_dir)
    home = Settings.resolve().home
    with exclusive(home / "locks" / f"register-{name}.lock"):
        version = _find(name, key)
        if version is None:
            labels = {CANDIDATE_LABEL: key, "framework": "xgboost",
                      "challenged": str(champion)}
            if run_id:
                labels["evaluation_run"] = run_id
            version = sy.register_model(
                name, str(model_dir),
                description="lead scoring retrained on fresh leads (quickstart closed loop)",
                labels=labels, metrics={**metrics, "champion_rmse": champion_rmse})
    return Outcome(version=version.version, semver=version.semver or "", promoted=False,
                   reason=(f"beat champion {name}:{champion} on the fresh leads: rmse "
                           f"{rmse:.6g} against {champion_rmse:.6g}; it goes out as a canary"),
                   production_version=production)


def _production(name: str) -> int:
    import shipyard as sy

    try:
        return sy.get_model_version(name, alias=ALIAS).version
    except NotFound:
        return 0


def _find(name: str, key: str) -> ModelVersion | None:
    import shipyard as sy

    try:
        found = sy.list_model_versions(name, filter=f"labels.{CANDIDATE_LABEL} = '{key}'")
    except NotFound:
        return None
    return found[0] if found else None
