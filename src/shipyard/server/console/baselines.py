"""A new monitor's baseline from the console: the profile of a dataset artifact of the
project (a Parquet or CSV file, or a directory artifact holding Parquet files or one CSV
file, as the quick start's ingest step writes), read from the artifact store into a
temporary folder and profiled there in bounded memory (``monitoring.profiles``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from shipyard.artifacts import ArtifactStore
from shipyard.errors import InvalidArgument, NotFound
from shipyard.lineage import queries as lineage
from shipyard.monitoring.profiles import profile
from shipyard.store import Store

__all__ = ["DATASET_TYPE", "baseline_profile"]

DATASET_TYPE = "system.Dataset"


def baseline_profile(store: Store, artifacts: ArtifactStore, project: str, artifact_id: str
                     ) -> tuple[bytes, str]:
    """The stored profile of the dataset artifact ``artifact_id`` and its URI;
    ``InvalidArgument`` naming ``baseline`` when it is not a table this can read."""
    try:
        node = lineage.get_artifact(store, project, artifact_id)
    except (NotFound, InvalidArgument):
        raise InvalidArgument(f"artifact {artifact_id!r} is not an artifact of project "
                              f"{project!r}", field="baseline") from None
    if not node.digest:
        raise InvalidArgument(f"artifact {artifact_id} holds no stored bytes",
                              field="baseline")
    with tempfile.TemporaryDirectory(prefix="shipyard-baseline-") as tmp:
        target = Path(tmp) / "data"
        if node.properties.get("layout") == "tree":
            artifacts.get_tree(node.digest, target, durable=False)
            parquet = sorted(str(p) for p in target.rglob("*.parquet"))
            csv = sorted(target.rglob("*.csv"))
            if parquet:
                source: object = ds.dataset(parquet, format="parquet").scanner().to_reader()
            elif len(csv) == 1:
                source = str(csv[0])
            else:
                raise InvalidArgument(f"artifact {artifact_id} holds no Parquet files and no "
                                      "single CSV file", field="baseline")
        else:
            artifacts.get_file(node.digest, target)
            try:
                ds.dataset(str(target), format="parquet")
                source = str(target)
            except (pa.ArrowException, OSError):
                source = str(target.rename(target.with_suffix(".csv")))
        try:
            found = profile(source)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InvalidArgument(f"artifact {artifact_id} is not a table (Parquet or CSV): "
                                  f"{exc}"[:300], field="baseline") from None
    return found.to_bytes(), node.uri
