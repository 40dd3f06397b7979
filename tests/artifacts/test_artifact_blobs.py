"""Blobs on every backend: put/get, dedup, atomic writes, verify-on-read, limits."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore, BlobInfo
from shipyard.artifacts.paths import blob_key
from shipyard.artifacts.streams import CHUNK_SIZE
from shipyard.errors import DataCorruption, InvalidArgument, NotFound, TooLarge

from .conftest import StoreCase


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Exploding:
    """A stream that fails after ``chunks`` full chunks, like a dropped upload."""

    def __init__(self, chunks: int) -> None:
        self._left = chunks

    def read(self, size: int, /) -> bytes:
        if self._left == 0:
            raise ConnectionResetError("client went away")
        self._left -= 1
        return b"z" * size


class _Endless:
    def __init__(self) -> None:
        self.served = 0

    def read(self, size: int, /) -> bytes:
        self.served += size
        return b"e" * size


def _blob_files(case: StoreCase) -> list[str]:
    return [key for key in case.list_raw() if key.startswith("blobs/")]


def test_put_get_round_trip(artifact_store: ArtifactStore) -> None:
    data = b"lead-scoring model bytes\x00\xff"
    info = artifact_store.put_bytes(data)
    assert info == BlobInfo(_digest(data), len(data))
    assert artifact_store.get_bytes(info.digest) == data
    assert artifact_store.exists(info.digest)
    assert artifact_store.size(info.digest) == len(data)
    assert artifact_store.verify(info.digest) == info
    with artifact_store.open(info.digest) as reader:
        assert reader.read() == data


def test_empty_and_multi_chunk_blobs(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    empty = artifact_store.put_bytes(b"")
    assert artifact_store.get_bytes(empty.digest) == b""
    big = os.urandom(2 * CHUNK_SIZE + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    info = artifact_store.put_file(source)
    assert info == BlobInfo(_digest(big), len(big))
    out = tmp_path / "out" / "copy.bin"
    out.parent.mkdir()
    assert artifact_store.get_file(info.digest, out) == info
    assert out.read_bytes() == big
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.bin"]


def test_same_bytes_are_stored_once(case: StoreCase, tmp_path: Path) -> None:
    store = case.store
    data = b"same content" * 100
    first = store.put_bytes(data)
    assert store.put_bytes(bytearray(data)) == first
    assert store.put_stream(io.BytesIO(data)) == first
    source = tmp_path / "f"
    source.write_bytes(data)
    assert store.put_file(source) == first
    other = store.put_bytes(b"other")
    assert _blob_files(case) == sorted(blob_key(d) for d in (first.digest, other.digest))
    assert sorted(store.iter_digests()) == sorted([first.digest, other.digest])


def test_delete_and_missing_blobs(case: StoreCase) -> None:
    store = case.store
    info = store.put_bytes(b"to delete")
    assert store.delete(info.digest) is True
    assert store.delete(info.digest) is False
    assert not store.exists(info.digest)
    with pytest.raises(NotFound):
        store.get_bytes(info.digest)
    with pytest.raises(NotFound):
        store.size(info.digest)
    assert list(store.iter_digests()) == []


@pytest.mark.parametrize(
    "digest", ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "/", "a" * 65]
)
def test_malformed_digests_are_refused(artifact_store: ArtifactStore, digest: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        artifact_store.get_bytes(digest)
    assert caught.value.field == "digest"
    with pytest.raises(InvalidArgument):
        artifact_store.exists(digest)


def test_iter_digests_skips_files_we_did_not_lay_out(case: StoreCase) -> None:
    info = case.store.put_bytes(b"real")
    case.write_raw("blobs/sha256/zz/stray.txt", b"not ours")
    case.write_raw(f"blobs/sha256/00/00/{info.digest}", b"real")  # wrong directory
    assert list(case.store.iter_digests()) == [info.digest]


# -- limits and atomicity ---------------------------------------------------------------------


def test_put_stream_max_size(case: StoreCase) -> None:
    store = case.store
    assert store.put_stream(io.BytesIO(b"x" * 100), max_size=100).size == 100
    with pytest.raises(TooLarge) as caught:
        store.put_stream(io.BytesIO(b"y" * 101), max_size=100)
    assert caught.value.field == "data"
    assert not store.exists(_digest(b"y" * 101))
    endless = _Endless()
    with pytest.raises(TooLarge):
        store.put_stream(endless, max_size=3 * CHUNK_SIZE)
    assert endless.served <= 3 * CHUNK_SIZE + 1  # stops one byte past the limit
    assert len(_blob_files(case)) == 1
    assert [k for k in case.list_raw() if not k.startswith("blobs/")] == []


@pytest.mark.parametrize("chunks", [2, 9])  # 9 MiB spills the S3 spool to a temporary file
def test_failed_stream_leaves_nothing(
    case: StoreCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: int
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    with pytest.raises(ConnectionResetError):
        case.store.put_stream(_Exploding(chunks))
    assert case.list_raw() == []
    assert list(spool.iterdir()) == []


def test_sigkilled_writer_leaves_no_partial_blob(case: StoreCase) -> None:
    child = textwrap.dedent(
        """
        import sys, time
        from shipyard.artifacts import open_artifact_store

        class Stalling:
            calls = 0
            def read(self, size):
                self.calls += 1
                if self.calls == 4:
                    sys.stdout.write("ready\\n")
                    sys.stdout.flush()
                    time.sleep(120)
                return b"k" * size

        open_artifact_store(sys.argv[1], cached=False).put_stream(Stalling())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, case.store.location],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", proc.stderr.read() if proc.stderr else ""
        if case.kind == "local":
            # Three chunks really were written to disk before the kill.
            staged = [k for k in case.list_raw() if k.startswith("tmp/")]
            assert len(staged) == 1
            assert len(case.read_raw(staged[0])) >= CHUNK_SIZE
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    assert _blob_files(case) == []
    assert list(case.store.iter_digests()) == []
    # The orphan (local tmp/) never blocks a later, complete write of any content.
    info = case.store.put_bytes(b"k" * (3 * CHUNK_SIZE))
    assert case.store.get_bytes(info.digest) == b"k" * (3 * CHUNK_SIZE)


# -- verify on read ---------------------------------------------------------------------------


def test_flipped_byte_is_detected(case: StoreCase, tmp_path: Path) -> None:
    store = case.store
    data = b"precious model weights " * 1000
    info = store.put_bytes(data)
    case.corrupt(info.digest, flip_at=len(data) // 2)
    with pytest.raises(DataCorruption) as caught:
        store.get_bytes(info.digest)
    assert caught.value.details["digest"] == info.digest
    with pytest.raises(DataCorruption):
        store.verify(info.digest)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataCorruption):
        store.get_file(info.digest, out / "restored.bin")
    assert list(out.iterdir()) == []  # neither the file nor its temporary copy


def test_last_chunk_is_withheld_until_verified(case: StoreCase) -> None:
    data = b"tiny"
    info = case.store.put_bytes(data)
    case.corrupt(info.digest, flip_at=3)
    with case.store.open(info.digest) as reader, pytest.raises(DataCorruption):
        reader.read(len(data))  # a caller stopping at the expected size still finds out


@pytest.mark.parametrize("damage", ["truncate", "extend"])
def test_changed_length_is_detected(case: StoreCase, damage: str) -> None:
    data = b"0123456789" * 50
    info = case.store.put_bytes(data)
    changed = data[:-1] if damage == "truncate" else data + b"!"
    case.write_raw(blob_key(info.digest), changed)
    with pytest.raises(DataCorruption):
        case.store.get_bytes(info.digest)


def test_put_repairs_a_damaged_copy(case: StoreCase) -> None:
    data = b"repair me" * 10
    info = case.store.put_bytes(data)
    case.write_raw(blob_key(info.digest), data[:5])
    assert case.store.put_stream(io.BytesIO(data)) == info
    assert case.store.get_bytes(info.digest) == data


def test_concurrent_writers_of_the_same_blob(case: StoreCase) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(2 * CHUNK_SIZE)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: case.store.put_stream(io.BytesIO(data)), range(6)))
    assert set(results) == {BlobInfo(_digest(data), len(data))}
    assert case.list_raw() == [blob_key(_digest(data))]  # one copy, no staging left behind
    assert case.store.get_bytes(_digest(data)) == data
