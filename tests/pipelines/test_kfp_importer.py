"""``dsl.importer``: an existing artifact (a path, a URL fsspec reads, or a Shipyard artifact
id) brought into a run, recorded in lineage, ``reimport`` honoured as on Kubeflow."""

from __future__ import annotations

from pathlib import Path

from shipyard import dsl
from shipyard.lineage import queries
from tests.pipelines.conftest import Env, run_in


@dsl.component
def read(data: dsl.Input[dsl.Dataset]) -> str:
    import os

    path = os.path.join(data.path, "part.csv") if os.path.isdir(data.path) else data.path
    with open(path) as f:
        return f"{f.read()}|{data.metadata.get('source', '-')}"


@dsl.pipeline(name="import-data")
def import_data(uri: str) -> None:
    imported = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset,
                            metadata={"source": "lake"})  # fmt: skip
    read(data=imported.output)


@dsl.pipeline(name="reimport-data")
def reimport_data(uri: str) -> None:
    imported = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, reimport=True)
    read(data=imported.output)


def test_import_a_file_or_folder_by_path(env: Env, mode: str, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b")
    run = run_in(mode, env, import_data, {"uri": str(tmp_path / "data.csv")})
    assert run.tasks["read"].outputs["Output"] == "a,b|lake"
    art = run.tasks["importer"].outputs["artifact"]
    assert art.type == "system.Dataset" and art.metadata == {"source": "lake"}
    node = queries.get_artifact(env.store, "default", art.artifact_id)
    assert node.digest == art.digest
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "part.csv").write_text("c")
    run = run_in(mode, env, import_data, {"uri": f"file://{tmp_path / 'folder'}"})
    assert run.tasks["read"].outputs["Output"] == "c|lake"


def test_reimport_false_reuses_what_was_imported_true_reads_again(
    env: Env, tmp_path: Path
) -> None:
    source = tmp_path / "data.csv"
    source.write_text("v1")
    first = env.run(import_data, {"uri": str(source)})
    source.write_text("v2")
    again = env.run(import_data, {"uri": str(source)})
    assert again.tasks["importer"].cached
    assert (again.tasks["importer"].outputs["artifact"].artifact_id
            == first.tasks["importer"].outputs["artifact"].artifact_id)  # fmt: skip
    assert again.tasks["read"].outputs["Output"] == "v1|lake"
    fresh = env.run(reimport_data, {"uri": str(source)})
    assert not fresh.tasks["importer"].cached
    assert fresh.tasks["read"].outputs["Output"] == "v2|-"


def test_import_a_shipyard_artifact_by_id(env: Env, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    first = env.run(import_data, {"uri": str(tmp_path / "data.csv")})
    art = first.tasks["importer"].outputs["artifact"]
    by_id = env.run(reimport_data, {"uri": art.artifact_id})
    imported = by_id.tasks["importer"].outputs["artifact"]
    assert imported.artifact_id == art.artifact_id and imported.digest == art.digest
    assert by_id.tasks["read"].outputs["Output"] == "x|lake"
    execution = queries.get_execution(env.store, "default", by_id.tasks["importer"].execution_id)
    assert execution.state == "COMPLETE"


def test_import_a_url_fsspec_reads(env: Env) -> None:
    import fsspec

    with fsspec.open("memory://bucket/data.csv", "w") as f:
        f.write("remote")
    # A memory filesystem lives in this process: the step must run inline to see it.
    run = env.run(reimport_data, {"uri": "memory://bucket/data.csv"}, inline=True)
    assert run.tasks["read"].outputs["Output"] == "remote|-"


def test_nothing_to_import_fails_the_task(env: Env, tmp_path: Path) -> None:
    run = env.run(reimport_data, {"uri": str(tmp_path / "missing.csv")}, raise_on_error=False)
    assert "nothing to import at" in (run.tasks["importer"].error or "")
    assert run.tasks["read"].state == "SKIPPED"
    run = env.run(reimport_data, {"uri": "0" * 32}, raise_on_error=False)
    assert run.tasks["importer"].error == (
        f"tasks.importer.artifact_uri: artifact {'0' * 32!r} is not an artifact of project "
        "'default'")  # fmt: skip
