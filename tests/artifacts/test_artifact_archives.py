"""``safe_extract``: good archives unpack; every known attack is refused without a trace."""

from __future__ import annotations

import contextlib
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from shipyard.artifacts import safe_extract
from shipyard.errors import InvalidArgument, TooLarge

Member = tuple[str, bytes | None]  # (name, data); None for a directory


def _tar(path: Path, members: list[tarfile.TarInfo | Member], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _zip(path: Path, members: list[zipfile.ZipInfo | Member]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                archive.writestr(member, b"/etc/passwd")
            else:
                name, data = member
                archive.writestr(name, b"" if data is None else data)
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """Where archives are extracted; the test then checks nothing else appeared beside it."""
    (tmp_path / "sandbox").mkdir()
    return tmp_path / "sandbox"


def _assert_untouched(tmp_path: Path, sandbox: Path) -> None:
    assert list(sandbox.iterdir()) == []  # no destination, no staging directory
    names = {p.name for p in tmp_path.rglob("*")}
    assert not names & {"evil", "evil.txt", "passwd", "pwned"}


GOOD_MEMBERS: list[tarfile.TarInfo | Member] = [
    ("./", None),
    ("./model", None),
    ("./model/weights.bin", b"\x00\x01" * 1000),
    ("./model/config.json", b"{}"),
    ("README", b"hello"),
]
EXPECTED = {"README": 5, "model/config.json": 2, "model/weights.bin": 2000}


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_good_tar_extracts_privately(tmp_path: Path, sandbox: Path, mode: str) -> None:
    archive = _tar(tmp_path / "good.tar", GOOD_MEMBERS, mode)
    dest = sandbox / "out"
    assert safe_extract(archive, dest) == EXPECTED
    assert (dest / "model" / "weights.bin").read_bytes() == b"\x00\x01" * 1000
    assert stat.S_IMODE((dest / "README").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "model").stat().st_mode) == 0o700
    assert [p.name for p in sandbox.iterdir()] == ["out"]


def test_good_zip_extracts(tmp_path: Path, sandbox: Path) -> None:
    members: list[zipfile.ZipInfo | Member] = [
        ("model/", None),
        ("model/weights.bin", b"\x00\x01" * 1000),
        ("model/config.json", b"{}"),
        ("README", b"hello"),
    ]
    archive = _zip(tmp_path / "good.zip", members)
    assert safe_extract(archive, sandbox / "out") == EXPECTED


TAR_ATTACKS: dict[str, list[tarfile.TarInfo | Member]] = {
    "dotdot": [("ok.txt", b"ok"), ("../evil.txt", b"pwned")],
    "dotdot-deep": [("a/b/../../../evil.txt", b"pwned")],
    "dot-slash-dotdot": [("./../evil.txt", b"pwned")],
    "absolute": [("/tmp/evil.txt", b"pwned")],
    "backslash": [("..\\evil.txt", b"pwned")],
    "encoded": [("%2e%2e%2fevil.txt", b"pwned")],
    "symlink": [_special("link", tarfile.SYMTYPE, "/etc/passwd")],
    "symlink-then-write": [
        _special("link", tarfile.SYMTYPE, ".."),
        ("link/evil.txt", b"pwned"),
    ],
    "hardlink": [_special("passwd", tarfile.LNKTYPE, "/etc/passwd")],
    "char-device": [_special("null", tarfile.CHRTYPE)],
    "block-device": [_special("sda", tarfile.BLKTYPE)],
    "fifo": [_special("pipe", tarfile.FIFOTYPE)],
    "duplicate": [("evil.txt", b"one"), ("evil.txt", b"two")],
    "file-then-dir": [("evil", b"file"), ("evil/inner", b"x")],
    "dir-then-file": [("evil", None), ("evil", b"file")],
    "control-char": [("evil\x1b.txt", b"x")],
}


@pytest.mark.parametrize("attack", sorted(TAR_ATTACKS))
def test_tar_attacks_are_refused(tmp_path: Path, sandbox: Path, attack: str) -> None:
    archive = _tar(tmp_path / "attack.tar.gz", TAR_ATTACKS[attack])
    with pytest.raises(InvalidArgument) as caught:
        safe_extract(archive, sandbox / "out")
    assert caught.value.field == "archive"
    _assert_untouched(tmp_path, sandbox)


def _zip_symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


ZIP_ATTACKS: dict[str, list[zipfile.ZipInfo | Member]] = {
    "dotdot": [("ok.txt", b"ok"), ("../../evil.txt", b"pwned")],
    "absolute": [("/evil.txt", b"pwned")],
    "backslash": [("..\\..\\evil.txt", b"pwned")],
    "symlink": [_zip_symlink()],
    "duplicate": [("evil.txt", b"one"), ("evil.txt", b"two")],
}


@pytest.mark.parametrize("attack", sorted(ZIP_ATTACKS))
def test_zip_attacks_are_refused(tmp_path: Path, sandbox: Path, attack: str) -> None:
    archive = tmp_path / "attack.zip"
    # zipfile warns about a duplicate name but writes it anyway, as an attacker's tool would.
    expect = pytest.warns(UserWarning) if attack == "duplicate" else contextlib.nullcontext()
    with expect:
        _zip(archive, ZIP_ATTACKS[attack])
    with pytest.raises(InvalidArgument) as caught:
        safe_extract(archive, sandbox / "out")
    assert caught.value.field == "archive"
    _assert_untouched(tmp_path, sandbox)


def test_zip_bomb_is_stopped_by_bytes_written(tmp_path: Path, sandbox: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("zeros.bin", bytes(32 * 1024 * 1024))
    assert archive.stat().st_size < 100_000  # over 300:1
    with pytest.raises(TooLarge) as caught:
        safe_extract(archive, sandbox / "out", max_bytes=1024 * 1024)
    assert caught.value.field == "archive"
    _assert_untouched(tmp_path, sandbox)


def test_lying_sizes_are_not_trusted(tmp_path: Path, sandbox: Path) -> None:
    # Many small members, each under the limit on its own; only the running total catches it.
    members: list[tarfile.TarInfo | Member] = [(f"f{i}", b"x" * 1000) for i in range(20)]
    archive = _tar(tmp_path / "many.tar", members, "w")
    with pytest.raises(TooLarge):
        safe_extract(archive, sandbox / "out", max_bytes=10_000)
    _assert_untouched(tmp_path, sandbox)


def test_too_many_members(tmp_path: Path, sandbox: Path) -> None:
    members: list[zipfile.ZipInfo | Member] = [(f"f{i}", b"") for i in range(50)]
    archive = _zip(tmp_path / "many.zip", members)
    with pytest.raises(TooLarge, match="entries"):
        safe_extract(archive, sandbox / "out", max_members=10)
    _assert_untouched(tmp_path, sandbox)


def test_not_an_archive_and_busy_destination(tmp_path: Path, sandbox: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InvalidArgument, match="not a tar or zip"):
        safe_extract(junk, sandbox / "out")
    good = _tar(tmp_path / "good.tar", GOOD_MEMBERS)
    (sandbox / "busy").mkdir()
    (sandbox / "busy" / "keep").write_bytes(b"mine")
    with pytest.raises(InvalidArgument) as caught:
        safe_extract(good, sandbox / "busy")
    assert caught.value.field == "dest_dir"
    assert [p.name for p in (sandbox / "busy").iterdir()] == ["keep"]


def test_truncated_archive_is_refused_atomically(tmp_path: Path, sandbox: Path) -> None:
    good = _tar(tmp_path / "good.tar.gz", [*GOOD_MEMBERS, ("big", bytes(range(256)) * 400)])
    data = good.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InvalidArgument):
        safe_extract(cut, sandbox / "out")
    assert list(sandbox.iterdir()) == []


def test_tar_ending_in_a_zip_is_read_as_a_tar(tmp_path: Path, sandbox: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", [("../../evil.txt", b"pwned")]).read_bytes()
    archive = _tar(tmp_path / "outer.tar", [("data.zip", inner)], "w")
    assert safe_extract(archive, sandbox / "out") == {"data.zip": len(inner)}
    assert (sandbox / "out" / "data.zip").read_bytes() == inner
