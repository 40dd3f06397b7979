"""``open_artifact_store``: which backend a location selects, caching, and refusals."""

from __future__ import annotations

import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.artifacts.local import LocalBackend
from shipyard.artifacts.remote import FsspecBackend
from shipyard.errors import InvalidArgument, MissingDependency


def _backend(store: ArtifactStore) -> object:
    return store._backend


def test_local_root_is_created_private(tmp_path: Path) -> None:
    root = tmp_path / "home" / "artifacts"
    store = open_artifact_store(str(root), cached=False)
    assert isinstance(_backend(store), LocalBackend)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert store.location == str(root)
    info = store.put_bytes(b"x")
    blob = root.joinpath(*f"blobs/sha256/{info.digest[:2]}/{info.digest[2:4]}".split("/"))
    assert stat.S_IMODE(blob.stat().st_mode) == 0o700
    assert stat.S_IMODE((blob / info.digest).stat().st_mode) == 0o600


def test_file_url_and_path_share_one_cached_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cached"
    first = open_artifact_store(str(root))
    assert open_artifact_store(f"file://{root}") is first
    monkeypatch.chdir(tmp_path)
    assert open_artifact_store("cached") is first
    assert open_artifact_store(str(root), cached=False) is not first


def test_memory_location(tmp_path: Path) -> None:
    name = f"memory://shipyard-{uuid.uuid4().hex[:8]}/artifacts"
    store = open_artifact_store(name)
    assert isinstance(_backend(store), FsspecBackend)
    assert open_artifact_store(name + "/") is store
    info = store.put_bytes(b"in memory")
    assert store.get_bytes(info.digest) == b"in memory"
    tree = store.put_tree(tmp_path)  # empty directory
    assert store.read_tree_manifest(tree.digest) == {}


def test_s3_location(s3_endpoint: str) -> None:
    store = open_artifact_store(f"s3://shipyard-test/loc-{uuid.uuid4().hex[:8]}", cached=False)
    assert isinstance(_backend(store), FsspecBackend)
    info = store.put_bytes(b"on s3")
    assert store.get_bytes(info.digest) == b"on s3"


@pytest.mark.parametrize(
    ("location", "package", "extra"),
    [
        ("s3://bucket/p", "s3fs", "s3"),
        ("gs://bucket/p", "gcsfs", "gcs"),
        ("gcs://bucket", "gcsfs", "gcs"),
    ],
)
def test_missing_client_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, location: str, package: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail
    with pytest.raises(MissingDependency) as caught:
        open_artifact_store(location, cached=False)
    assert f"pip install 'shipyard[{extra}]'" in str(caught.value)


@pytest.mark.parametrize(
    "location",
    [
        "",
        "ftp://host/path",
        "http://example.com/x",
        "hdfs://x",
        "simplecache::s3://bucket/x",
        "s3://",
        "s3:///",
        "s3://bucket/../other",
        "s3://bucket/*",
        "s3://bucket/a?b",
        "memory://",
    ],
)
def test_unsupported_locations_are_refused(location: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_artifact_store(location, cached=False)
    assert caught.value.field == "location"


def test_import_does_no_optional_imports() -> None:
    code = (
        "import sys, shipyard.artifacts\n"
        "loaded = {'fsspec', 's3fs', 'gcsfs', 'botocore'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
