"""What the server tells callers about itself (security review, item 9): no temporary or
storage paths in errors or task outputs; a home others could read is tightened; and many
processes opening one new home at once all start (core renovation defect)."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard import dsl
from shipyard.config import Settings, ensure_home
from shipyard.server.errors import redact
from tests.pipelines.conftest import Env, env
from tests.security.test_hostile_manifest import _tar
from tests.server.live import LiveServer, live_server

__all__ = ["env"]


def test_an_existing_home_readable_by_others_is_made_0700(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    ensure_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def _open_home(home: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        ensure_home(Path(home))
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the test
        results.put(repr(exc))  # type: ignore[attr-defined]


def test_eight_processes_opening_one_new_home_all_start(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(10):  # the race the fixed-name probe lost was a narrow one
        start = context.Barrier(8)
        results = context.Queue()
        home = str(tmp_path / f"fresh-{attempt}" / "home")
        workers = [context.Process(target=_open_home, args=(home, start, results))
                   for _ in range(8)]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=30) for _ in workers]
        for w in workers:
            w.join(timeout=30)
        assert outcomes == ["ok"] * 8
        assert [p.name for p in Path(home).iterdir()] == []  # no probe left behind


def test_redact_hides_scratch_names_and_the_servers_places() -> None:
    message = ("/tmp/shipyard-upload-1jtdokl6/model has no MLmodel.json; "
               "/proc/.nope.staging-g3jsobye is not writable; /srv/sy/artifacts/blobs/x")
    shown = redact(message, ["/srv/sy/artifacts"])
    assert "shipyard-upload-" not in shown and "staging-" not in shown
    assert "/srv/sy" not in shown
    assert "MLmodel.json" in shown  # what was wrong is still said


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    home = tmp_path / "home"
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'shipyard.db'}",
                                environ={})
    with live_server(settings, worker=False) as live:
        yield live


def test_an_upload_error_names_no_temporary_or_server_path(server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers) as admin:
        answer = admin.post("/api/v1/projects/p/models/m/versions",
                            files={"model": ("model.tar", _tar({"weights.bin": b"x"}),
                                             "application/x-tar")})
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert "shipyard-upload-" not in detail
    assert "/tmp" not in detail
    assert str(server.settings.home) not in detail


@dsl.component
def write_text(out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write("rows")


@dsl.pipeline(name="one-dataset")
def one_dataset() -> None:
    write_text()


def test_task_outputs_name_artifacts_not_where_they_are_kept(env: Env) -> None:
    run = env.run(one_dataset)
    output = run.tasks["write-text"].outputs["out"]
    assert output.uri == f"artifacts:/sha256/{output.digest}"
    shown = json.dumps(run.model_dump(mode="json"))
    assert str(env.artifacts.location) not in shown
    assert os.fspath(env.tmp) not in shown
