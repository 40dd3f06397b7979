"""The local credentials file: ``$SHIPYARD_HOME/credentials``, readable by its owner only.

The server writes the first admin token here on first start (DESIGN.md 6); the SDK and CLI
read it to talk to a server on the same machine. ``shipyard login`` saves the token it gets
from a server in ``$SHIPYARD_HOME/credentials-<host>[-<port>]``. Each file holds comment
lines starting with ``#`` and one token line. It is replaced atomically (a 0600 temporary
file in the same directory, fsync, rename, fsync of the directory), so a reader never sees
half a token and a crash never leaves the token in a file others can read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "CREDENTIALS_FILE",
    "credentials_path",
    "login_credentials_path",
    "read_credentials",
    "read_login_credentials",
    "write_credentials",
    "write_login_credentials",
]

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials"
_MAX_BYTES = 64 * 1024  # a token is 59 characters; anything this large is not ours


def credentials_path(home: Path) -> Path:
    """Where the credentials file for ``home`` lives."""
    return Path(home) / CREDENTIALS_FILE


def write_credentials(home: Path, token: str) -> Path:
    """Atomically write the server's first admin ``token`` to ``home/credentials`` with mode
    0600; returns the path. Creates ``home`` with mode 0700 if it does not exist."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _write_token(credentials_path(home), token,
                        f"Shipyard API token, written {created}. Keep it secret: it grants "
                        "admin rights.")


def login_credentials_path(home: Path, uri: str) -> Path:
    """Where ``shipyard login`` keeps the token for the server at ``uri``:
    ``home/credentials-<host>[-<port>]`` (one file per server)."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    # Only characters that are safe in a file name on every platform; an IPv6 address's
    # colons become underscores.
    host = re.sub(r"[^a-z0-9.-]", "_", host).strip(".") or "server"
    suffix = f"-{parts.port}" if parts.port else ""
    return Path(home) / f"{CREDENTIALS_FILE}-{host}{suffix}"


def write_login_credentials(home: Path, uri: str, token: str) -> Path:
    """Atomically save a token from ``shipyard login`` for the server at ``uri``."""
    return _write_token(login_credentials_path(home, uri), token,
                        "Shipyard API token from shipyard login. Keep it secret.")


def read_login_credentials(home: Path, uri: str) -> str | None:
    """The token ``shipyard login`` saved for the server at ``uri``, or None."""
    return _read_token(login_credentials_path(home, uri))


def _write_token(target: Path, token: str, comment: str) -> Path:
    """The one writer of credentials files: a comment line and the token, replaced
    atomically, readable by its owner only."""
    home = target.parent
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = f"# {comment}\n{token}\n".encode("ascii")
    # mkstemp creates the file with mode 0600 from the start, so the token is never briefly
    # readable by others, whatever the umask.
    fd, tmp_name = tempfile.mkstemp(prefix=".credentials.", dir=home)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fchmod(handle.fileno(), 0o600)
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(home)
    return target


def _fsync_directory(path: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_credentials(home: Path) -> str | None:
    """The token in ``home/credentials``, or None if the file is missing, unreadable or empty.

    Logs a warning when the file can be read by other users (it should be 0600).
    """
    return _read_token(credentials_path(home))


def _read_token(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(_MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_BYTES:
        log.warning("ignoring %s: too large to be a credentials file", path)
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s can be read by other users; run: chmod 600 %s",
            path,
            path,
            extra={"path": str(path), "mode": oct(stat.S_IMODE(mode))},
        )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    for line in text.splitlines():
        candidate = line.strip()
        if candidate and not candidate.startswith("#"):
            return candidate
    return None
