"""The one atomic-write helper behind drift reports and saved estimators."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.monitoring._files import write_atomic


def test_write_atomic_writes_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "drift.html"  # the folder is created
    assert write_atomic(target, b"first") == target
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["drift.html"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "estimator.json"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["estimator.json"]
