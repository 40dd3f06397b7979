"""Settings from arguments, the environment and defaults, resolved when asked for.

Nothing here runs at import time: ``Settings.resolve`` reads the environment only when it is
called, so importing Shipyard has no side effects (STYLE.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from shipyard.validation import check_name

DEFAULT_PROJECT = "default"
DEFAULT_HTTP_TIMEOUT = 60.0
DEFAULT_RUN_HEARTBEAT = 30.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class Settings:
    """Where Shipyard keeps its state and which project it works in.

    ``uri`` selects the mode: ``sqlite:///...`` or ``postgresql+psycopg://...`` open the
    metadata store directly (local mode); ``http(s)://host:port`` talks to a server (remote
    mode).
    """

    home: Path
    uri: str
    artifacts: str
    project: str = DEFAULT_PROJECT
    token: str | None = None
    # Fully qualified class names skops may load besides its own defaults (DESIGN.md 5).
    trusted_types: tuple[str, ...] = ()
    # sha256 digests of pickle files this process's loader trusts (DESIGN.md 5): the
    # loader's own decision, never the registrant's.
    trusted_digests: tuple[str, ...] = ()
    # Where steps of server-side pipeline runs reach the server (a worker's setting).
    server_url: str | None = None
    # The OS user steps of server-side runs run as, when the worker can switch to it.
    step_user: str | None = None
    # Remote mode: how long a request may wait on a silent server (connecting excepted),
    # uploads and downloads included: a hung server fails the call, never blocks it forever.
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    # Seconds between the heartbeats of a tracking run started by the SDK; a run that misses
    # four ends KILLED (its process died without ending it).
    run_heartbeat: float = DEFAULT_RUN_HEARTBEAT
    # A server's setting: the workers that run its queued runs have a container runtime, so
    # a run with container components is queued although this process has none (the
    # worker checks again before any step starts).
    worker_containers: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def credentials_path(self) -> Path:
        return self.home / "credentials"

    def with_project(self, project: str) -> Settings:
        return replace(self, project=check_name(project, "project"))

    @classmethod
    def resolve(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        uri: str | None = None,
        artifacts: str | None = None,
        project: str | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Arguments win over ``SHIPYARD_*`` environment variables, which win over defaults."""
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("SHIPYARD_HOME") or Path.home() / ".shipyard")
        home_path = home_path.expanduser().absolute()
        resolved_uri = uri or env.get("SHIPYARD_URI") or f"sqlite:///{home_path / 'shipyard.db'}"
        resolved_artifacts = (
            artifacts or env.get("SHIPYARD_ARTIFACTS") or str(home_path / "artifacts")
        )
        # An empty argument is a mistake to report (``--project ''``), not "the default";
        # an empty variable counts as unset, as shells have it.
        resolved_project = check_name(
            project if project is not None
            else env.get("SHIPYARD_PROJECT") or DEFAULT_PROJECT,
            "project",
        )
        trusted = tuple(
            t.strip() for t in env.get("SHIPYARD_TRUSTED_TYPES", "").split(",") if t.strip()
        )
        digests = tuple(
            d.strip().lower()
            for d in env.get("SHIPYARD_TRUSTED_DIGESTS", "").split(",")
            if d.strip()
        )
        return cls(
            home=home_path,
            uri=resolved_uri,
            artifacts=resolved_artifacts,
            project=resolved_project,
            token=token or env.get("SHIPYARD_TOKEN") or None,
            trusted_types=trusted,
            trusted_digests=digests,
            server_url=env.get("SHIPYARD_SERVER_URL") or None,
            step_user=env.get("SHIPYARD_STEP_USER") or None,
            http_timeout=_seconds(env.get("SHIPYARD_HTTP_TIMEOUT"), "SHIPYARD_HTTP_TIMEOUT",
                                  DEFAULT_HTTP_TIMEOUT),
            run_heartbeat=_seconds(env.get("SHIPYARD_RUN_HEARTBEAT"), "SHIPYARD_RUN_HEARTBEAT",
                                   DEFAULT_RUN_HEARTBEAT),
            worker_containers=_flag(env.get("SHIPYARD_WORKER_CONTAINERS"),
                                    "SHIPYARD_WORKER_CONTAINERS"),
        )


def _flag(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    from shipyard.errors import InvalidArgument

    raise InvalidArgument(f"{name} must be 1 or 0 (true or false), got {(value or '')[:40]!r}",
                          field=name)


def _seconds(value: str | None, name: str, default: float) -> float:
    if value is None or not value.strip():
        return default
    from shipyard.errors import InvalidArgument

    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 86_400:
        raise InvalidArgument(f"{name} must be a number of seconds above 0 and at most "
                              f"86400, got {value[:40]!r}", field=name)
    return seconds


def check_store_folder(settings: Settings) -> None:
    """Refuse a SQLite database in a folder that does not exist, unless that folder is the
    home (made on first use): a mistyped ``--uri`` must not create directories."""
    from shipyard.errors import InvalidArgument

    if not settings.uri.startswith("sqlite:///"):
        return
    path = settings.uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    folder = Path(path).expanduser().absolute().parent
    if folder == settings.home or folder.is_dir():
        return
    raise InvalidArgument(
        f"uri: the folder {folder} for the SQLite database does not exist; create it "
        "first, or put the database in the Shipyard home",
        field="uri",
    )


def ensure_home(home: Path) -> Path:
    """Create ``home`` with mode 0700 (DESIGN.md 6: the OS is the local-mode boundary), or
    tighten an existing one of ours that others could read. Safe when many processes (or
    pipeline steps) open the same new home at once."""
    import logging
    import stat
    import tempfile

    from shipyard.errors import FailedPrecondition

    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = home.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            logging.getLogger(__name__).warning(
                "the Shipyard home %s was readable by others (mode %o): made it 0700",
                home, stat.S_IMODE(info.st_mode))
            home.chmod(0o700)
        # A probe of its own: a fixed name would race with another process's probe.
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=home)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FailedPrecondition(
            f"cannot write to the Shipyard home {home}: {exc.strerror}; "
            "choose another with --home or SHIPYARD_HOME"
        ) from None
    return home
