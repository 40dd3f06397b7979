"""A pipeline run records where the code that started it came from (issue 16, seeds 003
and 004): the git commit, branch and state of the repository holding the entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import json, sys
import shipyard as sy
from shipyard import dsl

@dsl.component
def one() -> int:
    return 1

@dsl.pipeline(name="traced")
def traced() -> None:
    one()

sy.init(uri=sys.argv[1], home=sys.argv[2])
run = sy.run_pipeline(traced)
print(json.dumps(sy.get_pipeline_run(run.id).source))
"""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, timeout=30)
    return done.stdout.strip()


def test_the_run_names_the_commit_branch_and_entry_point(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "feature-x")
    (repo / "train.py").write_text(textwrap.dedent(SCRIPT))
    _git(repo, "add", "train.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
         "-m", "first")
    commit = _git(repo, "rev-parse", "HEAD")
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, str(repo / "train.py"), f"sqlite:///{home / 's.db'}", str(home)],
        capture_output=True, text=True, timeout=300, cwd=repo)
    assert done.returncode == 0, done.stderr
    source = json.loads(done.stdout.strip().splitlines()[-1])
    assert source["git.commit"] == commit
    assert source["git.branch"] == "feature-x"
    assert source["git.dirty"] == "false"
    assert source["source.name"] == "train.py"
    packages = json.loads(source["source.packages"])
    assert any(p.startswith("SQLAlchemy==") for p in packages)  # local mode imported it


def test_hostile_source_tags_are_refused_naming_the_field() -> None:
    import pytest

    from shipyard.errors import InvalidArgument, TooLarge
    from shipyard.pipelines.models import check_source

    assert check_source(None) == {}
    assert check_source({"git.commit": "a" * 40}) == {"git.commit": "a" * 40}
    cases: list[tuple[object, type[Exception], str]] = [
        (["git.commit"], InvalidArgument, "source"),
        ({f"k{i}": "v" for i in range(33)}, TooLarge, "source"),
        ({"../etc": "v"}, InvalidArgument, "source.key"),
        ({"git.commit": "x" * 8001}, TooLarge, "source.git.commit"),
        ({"git.commit": "a\x00b"}, InvalidArgument, "source.git.commit"),
    ]
    for value, kind, field in cases:
        with pytest.raises(kind) as info:
            check_source(value)
        assert info.value.field == field
