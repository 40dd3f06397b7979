"""Runs record where their code came from: git commit, branch, remote (without
credentials), dirty flag, entry point, Python and imported packages (issue 16,
reproducibility), searchable as tags, and at no cost outside a repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy
import pytest

from shipyard.tracking import source


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env)
    return done.stdout.strip()


SCRIPT = """
import json, sys
import numpy
import shipyard as sy
sy.init(home=sys.argv[1], uri="sqlite:///" + sys.argv[1] + "/s.db", project="p")
with sy.start_run(experiment="e") as run:
    run.log_metric("x", 1.0)
print(json.dumps({"id": run.id, "tags": sy.get_run(run.id).tags}))
"""


def _run_script(repo: Path, home: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(repo / "train" / "fit.py"), str(home)],
                          check=True, capture_output=True, text=True, cwd=repo)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    (repo / "train").mkdir(parents=True)
    (repo / "train" / "fit.py").write_text(textwrap.dedent(SCRIPT))
    _git(repo, "init", "-q", "-b", "feature-x")
    _git(repo, "remote", "add", "origin", "https://alice:s3cret@git.example.com/team/p.git")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def test_a_run_records_its_commit_branch_remote_and_entry_point(repo: Path,
                                                                tmp_path: Path) -> None:
    result = _run_script(repo, tmp_path / "home")
    tags = result["tags"]
    assert isinstance(tags, dict)
    assert tags["git.commit"] == _git(repo, "rev-parse", "HEAD")
    assert tags["git.branch"] == "feature-x"
    assert tags["git.remote"] == "https://git.example.com/team/p.git"  # no user, no secret
    assert tags["git.dirty"] == "false"
    assert tags["source.name"] == "train/fit.py"
    assert tags["source.python"] == ".".join(map(str, sys.version_info[:3]))
    assert f"numpy=={numpy.__version__}" in json.loads(tags["source.packages"])


def test_a_changed_tracked_file_makes_the_run_dirty_and_search_finds_the_commit(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "train" / "fit.py").write_text(SCRIPT + "\n# edited\n")
    home = tmp_path / "home"
    result = _run_script(repo, home)
    tags = result["tags"]
    assert isinstance(tags, dict)
    assert tags["git.dirty"] == "true"
    import shipyard as sy

    sy.init(home=home, uri=f"sqlite:///{home}/s.db", project="p")
    commit = _git(repo, "rev-parse", "HEAD")
    found = sy.search_runs(filter=f"tags.git.commit = '{commit}'")
    assert list(found["run_id"]) == [result["id"]]
    assert sy.search_runs(filter="tags.git.commit = 'nope'").empty


def test_outside_a_repository_nothing_runs_git(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError("git was run outside a repository")

    monkeypatch.setattr(subprocess, "run", no_git)
    source._repository_tags.cache_clear()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(source, "entry_point", lambda: None)
    tags = source.source_tags()
    assert not any(k.startswith("git.") for k in tags)
    assert tags["source.python"] == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.parametrize(("url", "shown"), [
    ("https://alice:s3cret@host/x.git", "https://host/x.git"),
    ("https://token@host:8443/x", "https://host:8443/x"),
    ("git@github.com:team/x.git", "git@github.com:team/x.git"),
    ("ssh://git@host/x", "ssh://host/x"),
])
def test_credentials_are_stripped_from_remote_urls(url: str, shown: str) -> None:
    assert source.strip_credentials(url) == shown
