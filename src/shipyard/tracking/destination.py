"""Where a downloaded run artifact goes, the same in local and remote mode.

``dest`` is read as ``cp`` reads it: a file artifact downloaded to an existing directory
lands inside it under the artifact's name; a directory artifact needs a new or empty
directory. A place that cannot be written is an ``InvalidArgument`` naming the user's
``dest``, never the temporary file the bytes were staged in beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.errors import InvalidArgument


def resolve_dest(dest: str | os.PathLike[str], name: str, kind: str) -> Path:
    """The path a ``kind`` ("file" or "tree") artifact called ``name`` is written to."""
    target = Path(dest).expanduser()
    if kind == "file":
        if target.is_dir():
            target = target / name
    elif target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(
            f"dest: {target} exists and is not an empty directory; the directory artifact "
            f"{name!r} is written to a new or empty directory",
            field="dest",
        )
    folder = target.absolute().parent
    if not folder.is_dir():
        raise InvalidArgument(
            f"dest: cannot write {target}: the folder {folder} does not exist", field="dest"
        )
    return target


@contextmanager
def writing(target: Path) -> Iterator[None]:
    """Report an ``OSError`` raised while ``target`` is written as one naming ``target``."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidArgument(f"dest: cannot write {target}: {reason}", field="dest") from None
