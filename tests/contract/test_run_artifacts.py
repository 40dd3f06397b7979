"""Run artifacts as a new user meets them, in local and remote mode (issue 16): what
``log_artifact`` accepts, and where ``download_artifact`` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from shipyard.errors import InvalidArgument, ShipyardError

SCRATCH_NAMES = (".staging-", "shipyard-download-", "shipyard-upload-", "shipyard-obj-")


@pytest.fixture
def logged(sy: ModuleType, tmp_path: Path) -> str:
    """A finished run holding the file artifact ``f.txt`` and the tree ``model``."""
    source = tmp_path / "src"
    (source / "model").mkdir(parents=True)
    (source / "f.txt").write_text("hello")
    (source / "model" / "weights.json").write_text("{}")
    with sy.start_run(experiment="e") as run:
        run.log_artifact(source / "f.txt")
        run.log_artifact(str(source / "model"), name="model")
    return str(run.id)


def _names(sy: ModuleType, run_id: str) -> list[str]:
    return sorted(a.name for a in sy.get_run(run_id).artifacts)


# -- download ------------------------------------------------------------------------------

def test_download_into_an_existing_directory_puts_the_file_inside(
        sy: ModuleType, logged: str, tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    written = sy.download_artifact(logged, "f.txt", folder)
    assert written == folder / "f.txt"  # as cp f.txt downloads/ does
    assert written.read_text() == "hello"
    again = sy.download_artifact(logged, "f.txt", folder / "renamed.txt")
    assert again.read_text() == "hello"


def test_download_of_a_tree_into_a_directory_that_is_not_empty(
        sy: ModuleType, logged: str, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgument) as info:
        sy.download_artifact(logged, "model", busy)
    assert info.value.field == "dest" and str(busy) in info.value.message
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    fresh = sy.download_artifact(logged, "model", tmp_path / "fresh")
    assert (fresh / "weights.json").read_text() == "{}"


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "unwritable"])
def test_download_to_an_unwritable_place_names_the_users_dest(
        sy: ModuleType, logged: str, tmp_path: Path, where: str) -> None:
    if where == "missing-folder":
        dest = tmp_path / "nonexistent" / "dir" / "f.txt"
    elif where == "under-a-file":
        (tmp_path / "a-file").write_text("")
        dest = tmp_path / "a-file" / "f.txt"
    else:
        if os.geteuid() == 0:
            dest = Path("/proc/nope")  # not writable even for root
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            dest = locked / "f.txt"
    with pytest.raises(ShipyardError) as info:
        sy.download_artifact(logged, "f.txt", dest)
    assert info.value.field == "dest", info.value
    assert str(dest) in info.value.message
    for scratch in SCRATCH_NAMES:
        assert scratch not in info.value.message
    assert not dest.exists()


# -- log_artifact --------------------------------------------------------------------------

def test_logging_a_missing_path_is_an_error(sy: ModuleType, tmp_path: Path) -> None:
    with sy.start_run(experiment="e") as run:
        for missing in ("/nonexistent/file.txt", tmp_path / "nope.csv"):
            with pytest.raises(InvalidArgument) as info:
                run.log_artifact(missing, name="x.txt")
            assert info.value.field == "path_or_object"
            assert str(missing) in info.value.message
            assert "no such file or directory" in info.value.message
    assert _names(sy, run.id) == []


@pytest.mark.parametrize("obj", [object(), {1, 2}, {"when": object()}, 3.5])
def test_logging_an_object_of_no_documented_kind_is_an_error(sy: ModuleType,
                                                            obj: object) -> None:
    with sy.start_run(experiment="e") as run:
        with pytest.raises(InvalidArgument) as info:
            run.log_artifact(obj, name="o.txt")
        assert info.value.field == "path_or_object"
        assert "bytes" in info.value.message and "dict" in info.value.message
    assert _names(sy, run.id) == []


def test_documented_objects_are_stored(sy: ModuleType, tmp_path: Path) -> None:
    import numpy as np

    with sy.start_run(experiment="e") as run:
        run.log_artifact(b"\x00\x01raw", name="raw.bin")
        run.log_artifact({"features": ["a", "b"], "n": np.int64(3), "rmse": np.float64(0.5)},
                         name="features.json")
        run.log_artifact([1, 2, 3], name="list.json")
        run.log_text("some notes\n", name="notes.txt")
    assert _names(sy, run.id) == ["features.json", "list.json", "notes.txt", "raw.bin"]
    out = tmp_path / "out"
    out.mkdir()
    assert sy.download_artifact(run.id, "raw.bin", out).read_bytes() == b"\x00\x01raw"
    stored = json.loads(sy.download_artifact(run.id, "features.json", out).read_text())
    assert stored == {"features": ["a", "b"], "n": 3, "rmse": 0.5}
    assert sy.download_artifact(run.id, "notes.txt", out).read_text() == "some notes\n"


def test_an_object_needs_a_valid_name_before_anything_is_written(
        sy: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with sy.start_run(experiment="e") as run:
        with pytest.raises(InvalidArgument) as info:
            run.log_artifact(b"x", name="../escape")
        assert info.value.field == "name"
        with pytest.raises(InvalidArgument) as info:
            run.log_artifact(b"x")
        assert info.value.field == "name"
    assert not (tmp_path / "escape").exists()
