# ruff: noqa: F811 - the fixtures imported from tests.server.conftest are parameters here
"""A hostile model manifest is bad input: a 400 naming it, never a 500.

A model version arrives over REST as a tar of a packaged directory whose
``shipyard-model.json`` the client wrote. The report: a malformed one gave a 500. Some
raised plain Python errors (an OverflowError for a size of 1e400, a RecursionError for
deeply nested JSON, a ValueError for an integer of 5,000 digits); every other one raised
``DataCorruption``, which is the server's own damaged data (a 500 by design) and not a
client's mistake. ``Manifest.from_bytes`` now raises only ``DataCorruption`` naming the
manifest field, and the upload route answers a damaged upload with 400 naming ``model``
(and the manifest field as ``manifest_field``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import httpx
import pytest

from shipyard.errors import DataCorruption
from shipyard.registry.flavors._manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest
from tests.server.conftest import admin, assert_problem, live, live_uri, project  # noqa: F401

MODEL = b"model bytes"
ENTRY = {"sha256": hashlib.sha256(MODEL).hexdigest(), "size": len(MODEL)}
_DROP = object()  # a key left out of the manifest
BASE: dict[str, Any] = {
    "format_version": 1,
    "flavor": "custom",
    "framework": {"name": "mine", "version": "1.0"},
    "python_version": "3.11.7",
    "files": {"model.bin": ENTRY},
}


def _with(**changes: Any) -> bytes:
    data = {**BASE, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not _DROP}).encode()


def _entry(**changes: Any) -> bytes:
    return _with(files={"model.bin": {**ENTRY, **changes}})


# (manifest bytes, the manifest field named, or None where the file cannot be read at all)
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "not JSON": (b"{nope", None),
    "not UTF-8": (b"\xff\xfe{}", None),
    "a JSON list": (b"[]", None),
    "a JSON string": (b'"manifest"', None),
    "nested 100,000 deep": (b'{"options": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    "an integer of 5,000 digits": (b'{"format_version": 1' + b"0" * 5000 + b"}", None),
    "format_version 1e400": (b'{"format_version": 1e400}', "format_version"),
    "format_version as text": (_with(format_version="1"), "format_version"),
    "format_version true": (_with(format_version=True), "format_version"),
    "format_version 0": (_with(format_version=0), "format_version"),
    "no files": (_with(files=_DROP), "files"),
    "files a list": (_with(files=["model.bin"]), "files"),
    "a file entry that is text": (_with(files={"model.bin": "x"}), "files"),
    "a file entry without size": (_with(files={"model.bin": {"sha256": ENTRY["sha256"]}}),
                                  "files"),
    "size 10**30": (_entry(size=10**30), "files"),
    "size 1e400": (_entry(size=1e400), "files"),
    "size NaN": (_entry(size=float("nan")), "files"),
    "size -1": (_entry(size=-1), "files"),
    "size as text": (_entry(size="11"), "files"),
    "size true": (_entry(size=True), "files"),
    "size 11.0": (_entry(size=11.0), "files"),
    "sha256 a number": (_entry(sha256=5), "files"),
    "sha256 not hex": (_entry(sha256="z" * 64), "files"),
    "a ../ path": (_with(files={"../model.bin": ENTRY}), "files"),
    "a nested ../ path": (_with(files={"a/../../model.bin": ENTRY}), "files"),
    "an absolute path": (_with(files={"/etc/passwd": ENTRY}), "files"),
    "a backslash path": (_with(files={"..\\model.bin": ENTRY}), "files"),
    "an empty path": (_with(files={"": ENTRY}), "files"),
    "no flavor": (_with(flavor=_DROP), "flavor"),
    "flavor a list": (_with(flavor=["custom"]), "flavor"),
    "framework as text": (_with(framework="mine"), "framework"),
    "framework name a number": (_with(framework={"name": 1, "version": "1"}),
                                "framework.name"),
    "framework without version": (_with(framework={"name": "mine"}), "framework.version"),
    "no python_version": (_with(python_version=_DROP), "python_version"),
    "python_version a number": (_with(python_version=3.11), "python_version"),
    "packages a list": (_with(packages=["numpy"]), "packages"),
    "a package version a number": (_with(packages={"numpy": 2}), "packages"),
    "options a list": (_with(options=[1, 2]), "options"),
    "options as text": (_with(options="ab"), "options"),
    "metadata as text": (_with(metadata="ab"), "metadata"),
    "created_at a list": (_with(created_at=[]), "created_at"),
    "signature as text": (_with(signature="x"), "signature"),
    "signature columns a number": (_with(signature={"columns": 5}), "signature"),
    "signature column as text": (_with(signature={"columns": ["a"]}), "signature"),
    "signature duplicate column": (
        _with(signature={"columns": [{"name": "a", "kind": "float"}] * 2}), "signature"),
    "signature kind a list": (
        _with(signature={"columns": [{"name": "a", "kind": ["float"]}]}), "signature"),
    "input_example ../": (_with(input_example="../../etc/passwd"), "input_example"),
    "input_example a number": (_with(input_example=5), "input_example"),
}


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _upload(admin: httpx.Client, project: str, files: dict[str, bytes]) -> httpx.Response:
    return admin.post(f"/api/v1/projects/{project}/models/m/versions",
                      files={"model": ("model.tar", _tar(files), "application/x-tar")})


@pytest.mark.parametrize("case", HOSTILE)
def test_parsing_a_hostile_manifest_raises_data_corruption_naming_the_field(case: str) -> None:
    raw, field = HOSTILE[case]
    with pytest.raises(DataCorruption) as info:
        Manifest.from_bytes(raw)
    assert info.value.field == field
    assert MANIFEST_NAME in info.value.message
    assert len(info.value.message) < 400  # the hostile input is not echoed back whole


def test_file_names_that_are_not_text_are_refused() -> None:
    # JSON object keys are always text; a manifest built in Python may not be.
    with pytest.raises(DataCorruption) as info:
        Manifest.from_dict({**BASE, "files": {7: ENTRY}})
    assert info.value.field == "files"


@pytest.mark.parametrize("case", HOSTILE)
def test_uploading_a_hostile_manifest_is_400_naming_the_model(admin: httpx.Client,
                                                              project: str, case: str) -> None:
    raw, field = HOSTILE[case]
    response = _upload(admin, project, {MANIFEST_NAME: raw, "model.bin": MODEL})
    assert_problem(response, 400, "model")
    assert response.json().get("manifest_field") == field
    assert response.json()["kind"] == "invalid_argument"


def test_an_oversized_manifest_is_refused_before_it_is_parsed(admin: httpx.Client,
                                                              project: str) -> None:
    raw = b'{"options": {"pad": "' + b"x" * MAX_MANIFEST_BYTES + b'"}}'
    with pytest.raises(DataCorruption, match="limit"):
        Manifest.from_bytes(raw)
    response = _upload(admin, project, {MANIFEST_NAME: raw, "model.bin": MODEL})
    assert_problem(response, 400, "model")
    assert "the limit is" in response.json()["detail"]


@pytest.mark.parametrize(("files", "detail"), [
    ({MANIFEST_NAME: _entry(sha256="0" * 64), "model.bin": MODEL}, "does not match"),
    ({MANIFEST_NAME: _entry(size=3), "model.bin": MODEL}, "size"),
    ({MANIFEST_NAME: _with(), "model.bin": MODEL, "planted.py": b"print()"}, "planted.py"),
    ({MANIFEST_NAME: _with(files={"model.bin": ENTRY, "other.bin": ENTRY}), "model.bin": MODEL},
     "other.bin"),
    ({MANIFEST_NAME: _with(flavor="pickle", options={"file": ["x"]}), "model.bin": MODEL},
     "does not list"),
    ({"model.bin": MODEL}, MANIFEST_NAME),
])
def test_a_manifest_that_does_not_match_its_files_is_400(admin: httpx.Client, project: str,
                                                         files: dict[str, bytes],
                                                         detail: str) -> None:
    response = _upload(admin, project, files)
    assert_problem(response, 400, "model")
    assert detail in response.json()["detail"]


def test_a_manifest_that_is_a_directory_is_400(admin: httpx.Client, project: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(MANIFEST_NAME)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        info = tarfile.TarInfo(f"{MANIFEST_NAME}/inner")
        info.size = len(MODEL)
        tar.addfile(info, io.BytesIO(MODEL))
    response = admin.post(f"/api/v1/projects/{project}/models/m/versions",
                          files={"model": ("model.tar", buf.getvalue(), "application/x-tar")})
    assert_problem(response, 400, "model")
    assert response.json()["detail"] == f"model: {MANIFEST_NAME} is not a file"


def test_a_newer_manifest_format_is_a_precondition(admin: httpx.Client, project: str) -> None:
    response = _upload(admin, project, {MANIFEST_NAME: _with(format_version=2),
                                        "model.bin": MODEL})
    assert_problem(response, 412, "format_version")
    assert "upgrade Shipyard" in response.json()["detail"]


def test_a_sound_manifest_registers(admin: httpx.Client, project: str) -> None:
    response = _upload(admin, project, {MANIFEST_NAME: _with(), "model.bin": MODEL})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1


@pytest.mark.parametrize("metadata", ["[" * 50_000, '{"labels": ' + "[" * 50_000 + "}"])
def test_deeply_nested_metadata_is_400(admin: httpx.Client, project: str, metadata: str
                                       ) -> None:
    response = admin.post(f"/api/v1/projects/{project}/models/m/versions",
                          data={"metadata": metadata},
                          files={"model": ("model.tar", b"", "application/x-tar")})
    assert_problem(response, 400, "metadata")
