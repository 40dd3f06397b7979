"""Where CI requires every test (SHIPYARD_REQUIRE_POSTGRES=1), a skip fails the session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parents[1]
SUITE = '''
import pytest

def test_runs() -> None:
    pass

def test_skips_itself() -> None:
    pytest.skip("not today")

@pytest.mark.skipif(True, reason="never here")
def test_marked() -> None:
    pass

@pytest.mark.xfail(reason="a known failure is not a skip", strict=True)
def test_xfails() -> None:
    raise AssertionError
'''


def _outcomes(tmp_path: Path, *, require: bool) -> tuple[int, dict[str, int]]:
    """Run SUITE with this conftest's hooks; the exit code and the summary's counts."""
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_REQUIRE_POSTGRES"}
    if require:
        env["SHIPYARD_REQUIRE_POSTGRES"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         str(tmp_path / "test_suite.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    return done.returncode, counts


def test_an_unexpected_skip_fails_where_every_test_must_run(tmp_path: Path) -> None:
    code, counts = _outcomes(tmp_path, require=True)
    # The skip in the test body fails it; the skip mark fails its setup (an error).
    assert (code, counts) == (1, {"failed": 1, "passed": 1, "xfailed": 1, "error": 1})


def test_skips_are_only_reported_elsewhere(tmp_path: Path) -> None:
    code, counts = _outcomes(tmp_path, require=False)
    assert (code, counts) == (0, {"passed": 1, "skipped": 2, "xfailed": 1})


def test_an_allowed_reason_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_ALL", True)
    monkeypatch.setattr(conftest, "ALLOWED_SKIPS", {"needs a GPU": "CI has none"})

    def skipped(reason: str) -> pytest.TestReport:
        return pytest.TestReport("t.py::t", ("t.py", 1, "t"), {}, "skipped",
                                 ("t.py", 1, f"Skipped: {reason}"), "call")  # fmt: skip

    assert conftest.unexpected_skip(skipped("needs a GPU (cuda 12)")) is None
    assert conftest.unexpected_skip(skipped("no GPU")) == "no GPU"
