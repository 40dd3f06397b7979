"""The single chokepoint: ``resolve_inside``, including planted symlinks and a property test."""

from __future__ import annotations

import os
import posixpath
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.artifacts.paths import blob_key, make_dirs, resolve_inside
from shipyard.errors import InvalidArgument

from .test_artifact_trees import HOSTILE_PATHS


@pytest.mark.parametrize("hostile", HOSTILE_PATHS)
def test_hostile_paths_are_refused_on_both_kinds_of_root(tmp_path: Path, hostile: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_inside(tmp_path, hostile, field="key")
    assert caught.value.field == "key"
    with pytest.raises(InvalidArgument):
        resolve_inside("bucket/prefix", hostile)


@pytest.mark.parametrize(
    "fine", ["a", "a/b/c.txt", "100%.txt", "~user", "a b", "caf\u00e9", "..a", "a..", ".hidden"]
)
def test_plain_paths_resolve_inside(tmp_path: Path, fine: str) -> None:
    resolved = resolve_inside(tmp_path, fine)
    assert resolved == Path(os.path.realpath(tmp_path), *fine.split("/"))
    assert resolve_inside("bucket/prefix", fine) == f"bucket/prefix/{fine}"


def test_sibling_with_common_prefix_is_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (tmp_path / "root-evil").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "root-evil", target_is_directory=True)
    with pytest.raises(InvalidArgument):
        resolve_inside(root, "link/x")


@pytest.fixture
def planted(tmp_path: Path) -> tuple[ArtifactStore, Path, Path]:
    """A local store, and a directory outside it holding a blob the attacker wants read."""
    root = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    return open_artifact_store(str(root), cached=False), root, outside


def test_planted_directory_link_is_not_followed(
    planted: tuple[ArtifactStore, Path, Path],
) -> None:
    store, root, outside = planted
    data = b"attacker-controlled"
    digest = __import__("hashlib").sha256(data).hexdigest()
    fake = outside.joinpath(*blob_key(digest).split("/"))
    fake.parent.mkdir(parents=True)
    fake.write_bytes(data)
    (root / "blobs").symlink_to(outside / "blobs", target_is_directory=True)

    for call in (store.get_bytes, store.exists, store.size, store.delete):
        with pytest.raises(InvalidArgument):
            call(digest)
    with pytest.raises(InvalidArgument):
        store.put_bytes(b"new content")
    with pytest.raises(InvalidArgument):
        list(store.iter_digests())
    assert fake.read_bytes() == data  # not deleted through the link
    assert sorted(p.name for p in fake.parent.iterdir()) == [digest]  # nothing written there


def test_planted_file_link_is_not_followed(planted: tuple[ArtifactStore, Path, Path]) -> None:
    store, root, outside = planted
    info = store.put_bytes(b"genuine")
    secret = outside / "secret"
    secret.write_bytes(b"genuine")  # same bytes, so only the refusal can stop the read
    path = root.joinpath(*blob_key(info.digest).split("/"))
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(InvalidArgument):
        store.get_bytes(info.digest)
    with pytest.raises(InvalidArgument):
        store.put_bytes(b"genuine")  # would otherwise "repair" the blob by writing through
    assert secret.read_bytes() == b"genuine"


def test_planted_staging_link_is_not_followed(planted: tuple[ArtifactStore, Path, Path]) -> None:
    store, root, outside = planted
    (root / "tmp").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgument):
        store.put_bytes(b"data")
    assert list(outside.iterdir()) == []


def test_make_dirs_is_private_and_checked(tmp_path: Path) -> None:
    made = make_dirs(tmp_path, "a/b/c")
    assert made == Path(os.path.realpath(tmp_path), "a", "b", "c")
    for level in ("a", "a/b", "a/b/c"):
        assert (tmp_path / level).stat().st_mode & 0o777 == 0o700
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidArgument):
        make_dirs(tmp_path, "file/sub")
    with pytest.raises(InvalidArgument):
        make_dirs(tmp_path, "a/../../escape")
    assert not (tmp_path.parent / "escape").exists()


# -- property: nothing generated ever lands outside -------------------------------------------

_PIECES = [
    "a", "b", "link", "..", ".", "", "%2e", "%2E", "%2f", "%2F", "%25", "%5c", "%00", "\\",
    ":", "~", "\uff0e", "\uff0f", "\u2024", "\x00", "\n", "?", "#", "/", "//", "*", "C:",
]
_paths = st.one_of(
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8).map("".join),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6).map("/".join),
    st.text(min_size=1, max_size=40),
)


@pytest.fixture(scope="module")
def property_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with a link inside it leading out, which generated paths may name."""
    base = tmp_path_factory.mktemp("property")
    root = base / "root"
    root.mkdir()
    (base / "outside").mkdir()
    (root / "link").symlink_to(base / "outside", target_is_directory=True)
    (root / "a").mkdir()
    return root


def _decodings(path: str) -> set[str]:
    forms, pending = set(), [path]
    while pending:
        form = pending.pop()
        if form not in forms:
            forms.add(form)
            pending += [unquote(form), unicodedata.normalize("NFKC", form)]
    return forms


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(relative=_paths)
def test_no_generated_path_resolves_outside(property_root: Path, relative: str) -> None:
    real_root = os.path.realpath(property_root)
    try:
        local = resolve_inside(property_root, relative)
    except InvalidArgument:
        local = None
    if local is not None:
        assert os.path.commonpath([real_root, local]) == real_root
        assert str(local) != real_root
        # No layer that decodes or normalises the accepted path can make it climb either.
        for form in _decodings(relative):
            assert ".." not in form.split("/") and not form.startswith("/")
            assert "\\" not in form
    try:
        remote = resolve_inside("bucket/prefix", relative)
    except InvalidArgument:
        return
    assert local is not None or relative.split("/")[0] == "link"
    assert posixpath.normpath(remote).startswith("bucket/prefix/")
