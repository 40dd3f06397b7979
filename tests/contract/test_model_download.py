"""``download_model`` writes where the user said, and a place it cannot write is an error
naming that place, not the staging folder beside it (issue 16), in both modes."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from shipyard.errors import InvalidArgument
from tests.contract.test_registry import _data, _model

SCRATCH_NAMES = (".staging-", "shipyard-dl-", "shipyard-download-")


@pytest.fixture
def model(sy: ModuleType) -> str:
    frame, y = _data(5)
    sy.register_model("m", _model(frame, y))
    return "m"


def test_download_into_a_new_or_empty_directory(sy: ModuleType, model: str,
                                                tmp_path: Path) -> None:
    fresh = sy.download_model(model, tmp_path / "fresh")
    assert (fresh / "shipyard-model.json").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (sy.download_model(model, empty) / "shipyard-model.json").is_file()


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "not-empty",
                                   "unwritable"])
def test_download_to_a_place_it_cannot_use_names_it(sy: ModuleType, model: str,
                                                    tmp_path: Path, where: str) -> None:
    if where == "missing-folder":
        dest = tmp_path / "nonexistent" / "dir"
    elif where == "under-a-file":
        (tmp_path / "a-file").write_text("")
        dest = tmp_path / "a-file" / "model"
    elif where == "not-empty":
        dest = tmp_path / "busy"
        dest.mkdir()
        (dest / "keep.txt").write_text("mine")
    elif os.geteuid() == 0:
        dest = Path("/proc/nope")  # not writable even for root
    else:
        (tmp_path / "locked").mkdir(mode=0o500)
        dest = tmp_path / "locked" / "model"
    with pytest.raises(InvalidArgument) as info:
        sy.download_model(model, dest)
    assert info.value.field == "dest", info.value
    assert str(dest) in info.value.message
    for scratch in SCRATCH_NAMES:
        assert scratch not in info.value.message
    if where == "not-empty":
        assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    else:
        assert not dest.exists()
    assert not (tmp_path / "nonexistent").exists()
