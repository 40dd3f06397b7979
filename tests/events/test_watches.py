"""Data watches: new files in a directory or a bucket prefix are announced as
data-arrived, each once, whatever the number of scans or scanners; files there before the
watch are not announced unless asked; hidden files wait until they are renamed."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import fsspec
import pytest

from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.events import builtin, bus, watches
from shipyard.events.models import Message
from shipyard.store import Store
from shipyard.store.types import utcnow

CTX = RequestContext(project="default", actor="tester")


def arrived(store: Store) -> list[Message]:
    got: list[Message] = []
    while batch := bus.pull(store, "default", "arrivals", max_messages=100):
        bus.ack(store, "default", "arrivals", [m.lease_token for m in batch])
        got.extend(batch)
    return got


def test_new_files_in_a_directory_are_announced_once(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "incoming"
    (data / "2026").mkdir(parents=True)
    (data / "old.csv").write_text("a\n1\n")
    bus.create_subscription(store, CTX, "arrivals", builtin.DATA_ARRIVED)
    watches.create_watch(store, CTX, "leads", str(data))
    assert watches.scan(store, "default", "leads") == []  # old.csv was there before
    (data / "new.csv").write_text("a\n2\n")
    (data / "2026" / "12.csv").write_text("a\n3\n")
    (data / ".part.tmp").write_text("half")  # being written: hidden, not announced
    assert watches.scan(store, "default", "leads") == ["2026/12.csv", "new.csv"]
    assert watches.scan(store, "default", "leads") == []
    (data / ".part.tmp").rename(data / "part.csv")
    assert watches.scan(store, "default", "leads") == ["part.csv"]
    got = [m.data for m in arrived(store)]
    assert got == [
        {"event": "data-arrived", "watch": "leads", "uri": str(data),
         "files": ["2026/12.csv", "new.csv"]},
        {"event": "data-arrived", "watch": "leads", "uri": str(data), "files": ["part.csv"]},
    ]


def test_existing_files_are_announced_when_asked_and_big_scans_are_split(
        store: Store, tmp_path: Path) -> None:
    data = tmp_path / "bulk"
    data.mkdir()
    for n in range(watches.MAX_FILES_PER_EVENT + 5):
        (data / f"f{n:04d}.bin").write_bytes(b"x")
    bus.create_subscription(store, CTX, "arrivals", builtin.DATA_ARRIVED)
    watches.create_watch(store, CTX, "bulk", f"file://{data}", announce_existing=True)
    found = watches.scan(store, "default", "bulk")
    assert len(found) == watches.MAX_FILES_PER_EVENT + 5
    sizes = [len(m.data["files"]) for m in arrived(store)]
    assert sizes == [watches.MAX_FILES_PER_EVENT, 5]


def test_a_bucket_prefix_is_watched_through_fsspec(store: Store, tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/watch-{tmp_path.name}"
    fs.pipe(f"{root}/day1/a.parquet", b"1234")
    bus.create_subscription(store, CTX, "arrivals", builtin.DATA_ARRIVED)
    watches.create_watch(store, CTX, "bucket", f"memory://{root.strip('/')}")
    fs.pipe(f"{root}/day2/b.parquet", b"5678")
    assert watches.scan(store, "default", "bucket") == ["day2/b.parquet"]
    assert [m.data["files"] for m in arrived(store)] == [["day2/b.parquet"]]


def test_concurrent_scanners_announce_each_file_once(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "race"
    data.mkdir()
    bus.create_subscription(store, CTX, "arrivals", builtin.DATA_ARRIVED)
    watches.create_watch(store, CTX, "race", str(data))
    for n in range(30):
        (data / f"{n:02d}.csv").write_text("x")
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(
        watches.scan(store, "default", "race"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(f for r in results for f in r) == [f"{n:02d}.csv" for n in range(30)]
    announced = [f for m in arrived(store) for f in m.data["files"]]
    assert sorted(announced) == [f"{n:02d}.csv" for n in range(30)]


def test_scan_due_scans_each_watch_once_per_interval(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "due"
    data.mkdir()
    watches.create_watch(store, CTX, "due", str(data), interval_seconds=60)
    now = utcnow()
    assert watches.scan_due(store, "w1", now=now) == 1
    assert watches.scan_due(store, "w2", now=now + timedelta(seconds=30)) == 0
    assert watches.scan_due(store, "w2", now=now + timedelta(seconds=61)) == 1
    (listed,) = watches.list_watches(store, "default")
    assert listed.last_scan_at is not None


def test_bad_watches_are_refused_naming_the_field(store: Store, tmp_path: Path) -> None:
    for uri in ("", "ftp://host/x", "s3://", "x" * 2000):
        with pytest.raises(InvalidArgument) as caught:
            watches.create_watch(store, CTX, "w", uri)
        assert caught.value.field == "uri"
    with pytest.raises(InvalidArgument) as caught:
        watches.create_watch(store, CTX, "w", str(tmp_path), interval_seconds=0)
    assert caught.value.field == "interval_seconds"
    watches.create_watch(store, CTX, "w", str(tmp_path / "not-yet"))  # may appear later
    with pytest.raises(AlreadyExists):
        watches.create_watch(store, CTX, "w", str(tmp_path))
    watches.delete_watch(store, CTX, "w")
    with pytest.raises(NotFound):
        watches.scan(store, "default", "w")
