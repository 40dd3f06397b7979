"""Steps of runs submitted through the server: no server credentials (DESIGN.md 6).

A run a principal submitted to the server is run by a worker that holds the database
credentials, the artifact root and the admin token in ``$SHIPYARD_HOME``. Its steps get none
of these. Each starts with a clean environment (a few variables a program needs, such as
``PATH``, ``LANG`` and ``PYTHONPATH``; never ``SHIPYARD_HOME``, the database URI or the
worker's own token), a scratch ``HOME`` and ``TMPDIR`` in its own folder, and a token
(``security.issue_run_token``) bound to the run's project with its submitter's role there,
revoked when the run ends; SDK calls inside the step go to the server with it
(``SHIPYARD_URI`` is the server's address). The launcher those steps fork from is started
with the same clean environment, so ``/proc/self/environ`` shows nothing more.

When the worker runs as root and ``SHIPYARD_STEP_USER`` names another OS user, each step
also runs as that user (its folder handed over to it), so it cannot read files that only the
worker's user may read: ``$SHIPYARD_HOME`` (mode 0700), the SQLite database, the artifact
root. docs/security.md says what a step can still reach in each set-up.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import FailedPrecondition

# What a program needs to run as it would in a login shell, and nothing that names a secret.
PASSED_THROUGH = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONIOENCODING", "VIRTUAL_ENV",
)  # fmt: skip


@dataclass(frozen=True)
class StepUser:
    name: str
    uid: int
    gid: int


def resolve_user(name: str) -> StepUser:
    """The OS user steps run as; ``FailedPrecondition`` saying how to fix it otherwise."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise FailedPrecondition(
            f"step user {name!r} does not exist: create it (useradd --system --no-create-home "
            f"{name}) or unset SHIPYARD_STEP_USER"
        ) from None
    if entry.pw_uid == 0:
        raise FailedPrecondition("the step user must not be root: name an unprivileged user")
    if os.geteuid() != 0 and os.geteuid() != entry.pw_uid:
        raise FailedPrecondition(
            f"cannot run steps as {name!r}: only a worker running as root can switch users "
            "(run the worker as root, or unset SHIPYARD_STEP_USER)"
        )
    return StepUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def clean_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default: this process's) a step may inherit."""
    source = os.environ if environ is None else environ
    return {k: source[k] for k in PASSED_THROUGH if k in source}


@dataclass(frozen=True)
class StepIsolation:
    """How the steps of one server-side run are started (see the module docstring)."""

    server_url: str
    token: str
    user: StepUser | None = None

    def environment(self, step_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (the run's own variables) over a clean environment, with the scratch
        folders and the run's server and token."""
        home = step_dir / "home"
        env = clean_environment()
        env.update(
            HOME=str(home),
            TMPDIR=str(step_dir / "tmp"),
            SHIPYARD_HOME=str(home / ".shipyard"),
            SHIPYARD_URI=self.server_url,
            SHIPYARD_TOKEN=self.token,
        )
        env.update(base)
        return env

    def prepare(self, run_dir: Path, step_dir: Path) -> None:
        """Make the step's folder its own: scratch folders, and with a step user, the
        folder handed over to it (the run's folder only traversable, not listable)."""
        for name in ("home", "tmp"):
            (step_dir / name).mkdir(mode=0o700, exist_ok=True)
        if self.user is None:
            return
        os.chmod(run_dir, 0o711)
        for root, dirs, files in os.walk(step_dir):
            os.chown(root, self.user.uid, self.user.gid, follow_symlinks=False)
            for name in (*dirs, *files):
                os.chown(os.path.join(root, name), self.user.uid, self.user.gid,
                         follow_symlinks=False)


def open_output(path: Path) -> int:
    """A step's output file opened for reading without following a link the step planted
    (which could name a file only the worker may read)."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
