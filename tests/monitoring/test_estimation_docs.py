"""The performance-estimation guide's code runs as written."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.docs.test_guides import DOCS, python_blocks


def test_estimation_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks((DOCS / "monitoring-estimation.md").read_text())
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "monitoring_estimation_guide.py"
    script.write_text("\n\n".join(blocks))
    runpy.run_path(str(script), run_name="__main__")
