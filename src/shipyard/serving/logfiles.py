"""Where an endpoint's request log is, for its readers (monitors, canary verdicts): the log's
folder under a local artifact store, or a temporary copy of just the hours a reader needs
from an object store (``s3://``, ``gs://``), read through the artifact store's backend."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["FOLDER", "hours_between", "log_files", "log_root", "request_log_root"]

FOLDER = "request-logs"  # under the artifact store: predictions/ and feedback/


def request_log_root(artifacts: str) -> Path | None:
    """The request log's folder under a local artifact store; None for an object store."""
    if "://" in artifacts and not artifacts.startswith("file://"):
        return None
    return Path(artifacts.removeprefix("file://")).expanduser() / FOLDER


@contextmanager
def log_root(artifacts: str, project: str, endpoint: str, start: datetime, end: datetime,
             feedback_from: datetime | None = None) -> Iterator[Path]:
    """A local folder holding ``endpoint``'s request log from ``start`` to ``end`` (and its
    feedback from ``feedback_from`` on; none without it): the log itself under a local
    artifact store; for an object store (``s3://``, ``gs://``), a temporary copy of just
    those hours' files, read through the artifact store's backend and removed afterwards."""
    local = request_log_root(artifacts)
    if local is not None:
        yield local
        return
    from shipyard.artifacts.locations import open_backend

    backend = open_backend(artifacts)
    with tempfile.TemporaryDirectory(prefix="shipyard-request-log-") as folder:
        root = Path(folder)
        predictions = f"{FOLDER}/predictions/project={project}/endpoint={endpoint}"
        keys = [key for hour in hours_between(start, end)
                for key in backend.iter_keys(f"{predictions}/hour={hour}")]
        if feedback_from is not None:
            first = feedback_from.astimezone(UTC).strftime("%Y-%m-%dT%H")
            feedback = f"{FOLDER}/feedback/project={project}/endpoint={endpoint}"
            keys += [key for key in backend.iter_keys(feedback)
                     if key.rsplit("/", 2)[-2].removeprefix("hour=") >= first]
        for key in keys:
            target = (root / key).resolve()
            if not key.endswith(".parquet") or not target.is_relative_to(root.resolve()):
                continue  # only the log's own files, inside the copy
            target.parent.mkdir(parents=True, exist_ok=True)
            source, _ = backend.open_read(key)
            try:
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)  # type: ignore[misc]
            finally:
                source.close()
        yield root / FOLDER


def hours_between(start: datetime, end: datetime) -> list[str]:
    """The hour partitions (``YYYY-MM-DDTHH``, UTC) from ``start``'s hour up to ``end``."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour.strftime("%Y-%m-%dT%H"))
        hour += timedelta(hours=1)
    return out


def log_files(root: Path, kind: str, project: str, endpoint: str, hours: list[str]
              ) -> list[str]:
    """The Parquet files of ``endpoint``'s log ``kind`` (``predictions`` or ``feedback``)
    under ``root`` in the hour partitions ``hours`` (see ``hours_between``), in order."""
    base = root / kind / f"project={project}" / f"endpoint={endpoint}"
    if not base.is_dir():
        return []
    folders = [base / f"hour={hour}" for hour in hours]
    return [str(f) for folder in folders if folder.is_dir()
            for f in sorted(folder.glob("*.parquet"))]
