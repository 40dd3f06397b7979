"""Directory trees: round trips, refused inputs and hostile manifests, on every backend."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore, BlobInfo, trees
from shipyard.errors import DataCorruption, InvalidArgument

from .conftest import StoreCase

FILES = {
    "model.json": b'{"trees": []}',
    "empty.txt": b"",
    "data/train.csv": b"a,b\n1,2\n",
    "data/deep/er/x.bin": bytes(range(256)) * 40,
    "caf\u00e9/\u65e5\u672c.txt": b"unicode names",
    "with space/and-dash_1.txt": b"ok",
}


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }


def test_round_trip_nested_tree(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    source = _write_tree(tmp_path / "src", FILES)
    (source / "empty-dir").mkdir()  # not recorded: trees hold files
    info = artifact_store.put_tree(source)
    assert list(info.files) == sorted(FILES)
    assert info.size == sum(len(data) for data in FILES.values())

    dest = tmp_path / "out" / "restored"
    assert artifact_store.get_tree(info.digest, dest) == info
    assert _read_tree(dest) == FILES
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "data" / "deep").stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "model.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in dest.parent.iterdir()) == ["restored"]  # no staging left


def test_same_files_give_the_same_digest(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    first = artifact_store.put_tree(_write_tree(tmp_path / "a", FILES))
    reordered = dict(reversed(list(FILES.items())))
    second = artifact_store.put_tree(_write_tree(tmp_path / "b", reordered))
    assert first.digest == second.digest
    changed = artifact_store.put_tree(_write_tree(tmp_path / "c", {**FILES, "empty.txt": b"!"}))
    assert changed.digest != first.digest
    manifest = artifact_store.get_bytes(first.digest)
    assert manifest == trees.encode_manifest(first.files)
    assert b" " not in manifest.replace(b"with space", b"")  # canonical: no whitespace


def test_empty_tree_into_existing_empty_dir(
    artifact_store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    info = artifact_store.put_tree(tmp_path / "src")
    assert info.files == {}
    dest = tmp_path / "dest"
    dest.mkdir()
    artifact_store.get_tree(info.digest, dest)
    assert list(dest.iterdir()) == []


def test_link_to_a_file_inside_is_stored_as_the_file(
    artifact_store: ArtifactStore, tmp_path: Path
) -> None:
    source = _write_tree(tmp_path / "src", {"real.txt": b"real"})
    (source / "alias.txt").symlink_to("real.txt")
    info = artifact_store.put_tree(source)
    assert info.files["alias.txt"] == info.files["real.txt"]
    dest = tmp_path / "dest"
    artifact_store.get_tree(info.digest, dest)
    assert not (dest / "alias.txt").is_symlink()
    assert (dest / "alias.txt").read_bytes() == b"real"


@pytest.mark.parametrize("kind", ["outside-file", "outside-dir", "inside-dir", "dangling", "fifo"])
def test_put_tree_refuses_links_out_and_special_files(
    artifact_store: ArtifactStore, tmp_path: Path, kind: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"do not publish")
    source = _write_tree(tmp_path / "src", {"sub/ok.txt": b"ok"})
    if kind == "outside-file":
        (source / "leak").symlink_to(secret)
    elif kind == "outside-dir":
        (source / "sub" / "leak").symlink_to(tmp_path, target_is_directory=True)
    elif kind == "inside-dir":
        (source / "loop").symlink_to(source, target_is_directory=True)
    elif kind == "dangling":
        (source / "gone").symlink_to(tmp_path / "missing")
    else:
        os.mkfifo(source / "pipe")
    with pytest.raises(InvalidArgument) as caught:
        artifact_store.put_tree(source)
    assert caught.value.field == "directory"


@pytest.mark.parametrize("name", ["what?.txt", "a:b", "back\\slash", "tab\there"])
def test_put_tree_refuses_names_that_could_not_be_read_back(
    artifact_store: ArtifactStore, tmp_path: Path, name: str
) -> None:
    source = _write_tree(tmp_path / "src", {name: b"x"})
    with pytest.raises(InvalidArgument) as caught:
        artifact_store.put_tree(source)
    assert caught.value.field == "directory"


def test_put_tree_needs_a_directory(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    for path in (tmp_path / "file", tmp_path / "missing"):
        with pytest.raises(InvalidArgument):
            artifact_store.put_tree(path)


def test_get_tree_refuses_a_non_empty_destination(
    artifact_store: ArtifactStore, tmp_path: Path
) -> None:
    info = artifact_store.put_tree(_write_tree(tmp_path / "src", {"a": b"1"}))
    busy = _write_tree(tmp_path / "busy", {"keep.txt": b"mine"})
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "empty", target_is_directory=True)
    (tmp_path / "empty").mkdir()
    for dest in (busy, tmp_path / "file", tmp_path / "link"):
        with pytest.raises(InvalidArgument) as caught:
            artifact_store.get_tree(info.digest, dest)
        assert caught.value.field == "dest_dir"
    assert _read_tree(busy) == {"keep.txt": b"mine"}


def test_corrupt_file_in_tree_leaves_no_destination(case: StoreCase, tmp_path: Path) -> None:
    info = case.store.put_tree(_write_tree(tmp_path / "src", FILES))
    case.corrupt(info.files["data/deep/er/x.bin"].digest, flip_at=100)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataCorruption):
        case.store.get_tree(info.digest, out / "restored")
    assert list(out.iterdir()) == []


# -- hostile manifests ------------------------------------------------------------------------

HOSTILE_PATHS = [
    "../../etc/passwd",
    "../outside.txt",
    "a/../../x",
    "/etc/passwd",
    "//proc/self/root",
    "%2e%2e%2fetc%2fpasswd",
    "%2e%2e/x",
    "%252e%252e%252fetc",
    "%25252e%25252e%25252f",
    "..\\..\\x",
    "a\\..\\..\\x",
    "a#/../../x",
    "?x",
    "a?b=../../x",
    "s3://bucket/key",
    "C:evil",
    "a\x00b",
    "a\nb",
    "\x1b[31m",
    "\u202eevil",
    ".",
    "..",
    "a/./b",
    "a//b",
    "a/",
    "",
    "\uff0e\uff0e\uff0fx",
    "*",
    "x" * 300,
]


def _store_manifest(store: ArtifactStore, files: dict[str, BlobInfo]) -> str:
    # encode_manifest does not check paths, so this is exactly what an attacker can upload.
    return store.put_bytes(trees.encode_manifest(files)).digest


@pytest.mark.parametrize("hostile", HOSTILE_PATHS)
def test_hostile_manifest_path_is_refused(
    artifact_store: ArtifactStore, tmp_path: Path, hostile: str
) -> None:
    payload = artifact_store.put_bytes(b"owned")
    digest = _store_manifest(artifact_store, {"ok.txt": payload, hostile: payload})
    out = tmp_path / "sandbox" / "out"
    out.parent.mkdir()
    with pytest.raises(InvalidArgument) as caught:
        artifact_store.get_tree(digest, out)
    assert caught.value.field == "manifest"
    with pytest.raises(InvalidArgument):
        artifact_store.read_tree_manifest(digest)
    assert list(out.parent.iterdir()) == []  # not even ok.txt: refused before writing
    assert not any(p.name in ("passwd", "outside.txt", "x") for p in tmp_path.rglob("*"))


def _raw_manifest(files: object, **extra: object) -> bytes:
    return json.dumps({"files": files, "format": trees.FORMAT, **extra}).encode()


GOOD = {"digest": "a" * 64, "size": 1}


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"files": {}}).encode(),
        json.dumps({"files": {}, "format": "other/1"}, separators=(",", ":")).encode(),
        _raw_manifest({"a": GOOD}),  # not canonical: whitespace
        b'{"files":{"a":' + json.dumps(GOOD).encode() + b',"a":{}},"format":"shipyard.tree/1"}',
        _raw_manifest({"a": {"digest": "A" * 64, "size": 1}}),
        _raw_manifest({"a": {"digest": "a" * 64, "size": 1.0}}),
        _raw_manifest({"a": {"digest": "a" * 64, "size": -1}}),
        _raw_manifest({"a": {"digest": "a" * 64, "size": True}}),
        _raw_manifest({"a": {"digest": "a" * 64}}),
        _raw_manifest({"a": "a" * 64}),
        _raw_manifest([["a", GOOD]]),
        _raw_manifest({"a": GOOD}, extra=1),
    ],
)
def test_malformed_manifests_are_refused(artifact_store: ArtifactStore, data: bytes) -> None:
    digest = artifact_store.put_bytes(data).digest
    with pytest.raises(InvalidArgument) as caught:
        artifact_store.read_tree_manifest(digest)
    assert caught.value.field == "manifest"


def test_file_that_is_also_a_directory_is_refused(artifact_store: ArtifactStore) -> None:
    blob = artifact_store.put_bytes(b"x")
    digest = _store_manifest(artifact_store, {"a/b": blob, "a/b/c": blob})
    with pytest.raises(InvalidArgument, match="both a file and a directory"):
        artifact_store.read_tree_manifest(digest)


def test_oversized_manifest_is_refused_before_reading(
    artifact_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = artifact_store.put_bytes(b"x")
    digest = _store_manifest(artifact_store, {f"f{i}": blob for i in range(50)})
    monkeypatch.setattr(trees, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(InvalidArgument, match="bytes long"):
        artifact_store.read_tree_manifest(digest)


def test_manifest_size_mismatch_is_corruption(
    artifact_store: ArtifactStore, tmp_path: Path
) -> None:
    blob = artifact_store.put_bytes(b"four")
    digest = _store_manifest(artifact_store, {"f": BlobInfo(blob.digest, 5)})
    with pytest.raises(DataCorruption):
        artifact_store.get_tree(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
