"""Large blobs: copied in the kernel and hashed beside the copy (``kernel_copy``), on the
local backend, and streamed on S3. Either way the digest is that of the stored bytes, a
damaged blob is caught on the way out, and nothing partial is left behind."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore, kernel_copy
from shipyard.artifacts.paths import blob_key
from shipyard.errors import DataCorruption

from .conftest import StoreCase

# Above the kernel-copy threshold and more than one of its 8 MiB chunks.
LARGE = kernel_copy.MIN_SIZE * 2 + 12345


@pytest.fixture(scope="module")
def large_data() -> bytes:
    return os.urandom(LARGE)


def _staging_leftovers(case: StoreCase) -> list[str]:
    return [key for key in case.list_raw() if key.startswith("tmp/")]


def test_large_file_round_trip(case: StoreCase, tmp_path: Path, large_data: bytes) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(large_data)
    info = case.store.put_file(source)
    assert info.digest == hashlib.sha256(large_data).hexdigest()
    assert info.size == LARGE
    assert case.read_raw(blob_key(info.digest)) == large_data
    case.store.get_file(info.digest, tmp_path / "restored.bin")
    assert (tmp_path / "restored.bin").read_bytes() == large_data
    assert case.store.put_file(source) == info  # stored once
    assert _staging_leftovers(case) == []


def test_large_tree_round_trip(case: StoreCase, tmp_path: Path, large_data: bytes) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(large_data)
    (tmp_path / "src" / "small.txt").write_text("hello")
    tree = case.store.put_tree(tmp_path / "src")
    for durable in (True, False):
        dest = tmp_path / f"out-{durable}"
        case.store.get_tree(tree.digest, dest, durable=durable)
        assert (dest / "big.bin").read_bytes() == large_data
        assert (dest / "small.txt").read_text() == "hello"


@pytest.mark.parametrize("where", [0, LARGE // 2, LARGE - 1])
def test_damaged_large_blob_is_caught(
    case: StoreCase, tmp_path: Path, large_data: bytes, where: int
) -> None:
    info = case.store.put_bytes(large_data)
    case.corrupt(info.digest, flip_at=where)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataCorruption) as caught:
        case.store.get_file(info.digest, out / "restored.bin")
    assert caught.value.details["digest"] == info.digest
    assert list(out.iterdir()) == []
    tree = case.store.put_tree_entries({"w.bin": info})
    with pytest.raises(DataCorruption):
        case.store.get_tree(tree.digest, tmp_path / "tree", durable=False)
    assert not (tmp_path / "tree").exists()


def test_without_kernel_copy_the_stream_path_stores_the_same(
    tmp_path: Path, large_data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.artifacts import open_artifact_store

    def unsupported(*_args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device copy not supported")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    store = open_artifact_store(str(tmp_path / "a"), cached=False)
    source = tmp_path / "w.bin"
    source.write_bytes(large_data)
    info = store.put_file(source)
    assert info.digest == hashlib.sha256(large_data).hexdigest()
    store.get_file(info.digest, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == large_data


def test_copy_and_hash_refuses_a_write_only_destination(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"x" * 100)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(kernel_copy.KernelCopyUnsupported, match="reading back"):
            kernel_copy.copy_and_hash(src, dst, sync=False)
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == b""


def test_copy_and_hash_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"")
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert kernel_copy.copy_and_hash(src, dst, sync=True) == (
            hashlib.sha256(b"").hexdigest(),
            0,
        )
    finally:
        os.close(src)
        os.close(dst)


def test_put_tree_entries_refuses_missing_blobs_and_bad_paths(
    artifact_store: ArtifactStore,
) -> None:
    from shipyard.artifacts import BlobInfo
    from shipyard.errors import InvalidArgument, NotFound

    info = artifact_store.put_bytes(b"abc")
    with pytest.raises(NotFound, match="no blob"):
        artifact_store.put_tree_entries({"a": BlobInfo("0" * 64, 3)})
    with pytest.raises(NotFound, match="no blob"):
        artifact_store.put_tree_entries({"a": BlobInfo(info.digest, 4)})
    with pytest.raises(InvalidArgument):
        artifact_store.put_tree_entries({"../escape": info})
    tree = artifact_store.put_tree_entries({"a/b.txt": info})
    assert artifact_store.read_tree_manifest(tree.digest) == {"a/b.txt": info}


def test_copy_file_range_answering_zero_falls_back(
    tmp_path: Path, large_data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some filesystems report "copied nothing" instead of an error; storing an empty blob
    # for a 8 MiB file would lose the file silently.
    from shipyard.artifacts import open_artifact_store

    monkeypatch.setattr(os, "copy_file_range", lambda *_args: 0)
    store = open_artifact_store(str(tmp_path / "a"), cached=False)
    source = tmp_path / "w.bin"
    source.write_bytes(large_data)
    info = store.put_file(source)
    assert (info.digest, info.size) == (hashlib.sha256(large_data).hexdigest(), LARGE)
    store.get_file(info.digest, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == large_data


@pytest.mark.parametrize("extra", [1, 5 * 1024 * 1024])
def test_tree_archive_refuses_a_blob_grown_on_disk(case: StoreCase, extra: int) -> None:
    from shipyard.artifacts.export import tree_as_tar

    info = case.store.put_bytes(b"x" * 1000)
    tree = case.store.put_tree_entries({"model.bin": info})
    case.write_raw(blob_key(info.digest), b"EVIL" * 250 + b"\0" * extra)
    with pytest.raises(DataCorruption, match=r"model\.bin"):
        tree_as_tar(case.store, tree.digest)
