"""Where a run's code came from (seeds 003 and 004: which code and data made this model?).

``source_tags()`` gives the tags ``start_run`` records, as MLflow's ``mlflow.source.*`` do:

=================  ==========================================================
``git.commit``     the commit checked out (40 hex characters)
``git.branch``     the branch, when HEAD is on one
``git.remote``     the ``origin`` URL, without any user name or password in it
``git.dirty``      ``true`` when tracked files differ from the commit
``source.name``    the entry-point file (``__main__``), relative to the repository
``source.python``  the Python version
``source.packages``  ``name==version`` of the installed packages the code imported
                   (recorded when the run ends, so it covers the whole run)
=================  ==========================================================

The repository is found by walking up from the entry point (or the working directory) to
a ``.git``, and read from its files, so a process outside any repository pays only for
that walk. Only ``git.dirty`` runs ``git`` (``status --porcelain``), and only in a
repository. Everything is computed once per process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
_REMOTE_SECTION = re.compile(r'^\s*\[remote\s+"origin"\]\s*$')
_SECTION = re.compile(r"^\s*\[")
_URL = re.compile(r"^\s*url\s*=\s*(\S+)\s*$")


def entry_point() -> Path | None:
    """The script the process runs, if it is a file (not ``-c``, a REPL or a notebook)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    candidate = Path(path).resolve()
    return candidate if candidate.is_file() else None


def find_repository(start: Path) -> Path | None:
    """The working tree holding ``start`` (a folder with ``.git``), or None."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _git_dir(tree: Path) -> Path | None:
    dot_git = tree / ".git"
    if dot_git.is_dir():
        return dot_git
    try:  # a worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if text.startswith("gitdir:"):
        target = Path(text[len("gitdir:"):].strip())
        return target if target.is_absolute() else (tree / target).resolve()
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def head(git_dir: Path) -> tuple[str | None, str | None]:
    """(commit, branch) of HEAD, read from the repository's files."""
    text = _read(git_dir / "HEAD")
    if text is None:
        return None, None
    if _COMMIT.fullmatch(text):
        return text, None  # detached
    if not text.startswith("ref:"):
        return None, None
    ref = text[4:].strip()
    branch = ref.removeprefix("refs/heads/")
    common = Path(_read(git_dir / "commondir") or ".")
    roots = [git_dir, (git_dir / common).resolve()]
    for root in roots:
        commit = _read(root / ref)
        if commit and _COMMIT.fullmatch(commit):
            return commit, branch
    for root in roots:
        packed = _read(root / "packed-refs") or ""
        for line in packed.splitlines():
            parts = line.split(" ", 1)
            if len(parts) == 2 and parts[1] == ref and _COMMIT.fullmatch(parts[0]):
                return parts[0], branch
    return None, branch


def origin_url(git_dir: Path) -> str | None:
    """The ``origin`` remote's URL with credentials removed."""
    common = Path(_read(git_dir / "commondir") or ".")
    config = _read((git_dir / common).resolve() / "config") or _read(git_dir / "config") or ""
    inside = False
    for line in config.splitlines():
        if _SECTION.match(line):
            inside = bool(_REMOTE_SECTION.match(line))
            continue
        match = _URL.match(line) if inside else None
        if match:
            return strip_credentials(match.group(1))
    return None


def strip_credentials(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://host/x``; scp-style ``git@host:x`` stays."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def is_dirty(tree: Path) -> bool | None:
    """Whether tracked files differ from HEAD (None when git cannot say)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return bool(done.stdout.strip())


def imported_packages() -> dict[str, str]:
    """``{distribution: version}`` of the installed packages whose modules are imported."""

    owners = _owners()
    found: dict[str, str] = {}
    stdlib = sys.stdlib_module_names
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in stdlib or top.startswith("_"):
            continue
        for dist in owners.get(top, ()):
            if dist not in found:
                version = _version(dist)
                if version is not None:
                    found[dist] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


@functools.cache
def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _owners() -> dict[str, list[str]]:
    from importlib import metadata

    try:
        return dict(metadata.packages_distributions())
    except Exception:  # a broken installation must not stop a run
        log.debug("cannot map modules to distributions", exc_info=True)
        return {}


@functools.cache
def _repository_tags(start: str) -> tuple[tuple[str, str], ...]:
    tree = find_repository(Path(start))
    if tree is None:
        return ()
    git_dir = _git_dir(tree)
    if git_dir is None:
        return ()
    tags: dict[str, str] = {}
    commit, branch = head(git_dir)
    if commit:
        tags["git.commit"] = commit
    if branch:
        tags["git.branch"] = branch
    remote = origin_url(git_dir)
    if remote:
        tags["git.remote"] = remote
    dirty = is_dirty(tree)
    if dirty is not None:
        tags["git.dirty"] = "true" if dirty else "false"
    main = entry_point()
    if main is not None and main.is_relative_to(tree):
        tags["source.name"] = main.relative_to(tree).as_posix()
    return tuple(tags.items())


PACKAGES_TAG = "source.packages"


def source_tags() -> dict[str, str]:
    """The tags describing this process's code at the start of a run (see the module
    docstring); ``source.packages`` comes at its end (:func:`packages_tag`), and the map
    of installed packages it needs (a scan of site-packages, ~0.2 s) is read meanwhile in
    a background thread."""
    threading.Thread(target=_owners, name="shipyard-packages", daemon=True).start()
    main = entry_point()
    start = main.parent if main is not None else Path(os.getcwd())
    tags = dict(_repository_tags(str(start)))
    if "source.name" not in tags and main is not None:
        tags["source.name"] = main.name
    tags["source.python"] = platform.python_version()
    return tags


def packages_tag(max_value: int = 8000) -> str | None:
    """``source.packages``: a JSON list of ``name==version``; None if it would not fit."""
    packages = json.dumps(
        [f"{name}=={version}" for name, version in imported_packages().items()],
        separators=(",", ":"),
    )
    return packages if len(packages) <= max_value else None
