"""``dsl.importer``: bring an existing artifact into a pipeline, as Kubeflow's does.

``artifact_uri`` names what to import: a local path (or ``file://`` URL), a remote URL that
fsspec reads (``s3://``, ``gs://``, ...; the filesystem's package must be installed), or the
id of an artifact of the run's project (as lineage shows it). A path or URL is copied by a
step, with the step's own permissions, into the artifact store; an artifact id is used as
it is (no copy). The task's output ``artifact`` carries ``metadata`` and is recorded in
lineage like any output. With ``reimport=False`` (the default) a URI imported before is
served from the cache (the artifact recorded then); ``reimport=True`` reads it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.dsl._artifacts import Artifact
from shipyard.dsl._binding import bind_arguments
from shipyard.dsl._builder import current_builder
from shipyard.dsl._channels import Channel
from shipyard.dsl._task import PipelineTask
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ComponentSpec, InputDef, OutputDef

# The step that copies a path or URL. Its annotations are never evaluated in the step.
_SOURCE = '''\
def importer(uri: str, metadata: dict, artifact: Output[Artifact]) -> None:
    import os
    import shutil

    artifact.metadata.update(metadata or {})
    if "://" in uri and not uri.startswith("file://"):
        try:
            import fsspec
        except ImportError:
            raise RuntimeError(
                f"importing {uri} needs fsspec and the package of its filesystem "
                "(pip install fsspec s3fs, or gcsfs for gs://)"
            ) from None
        fs, remote = fsspec.core.url_to_fs(uri)
        if not fs.exists(remote):
            raise FileNotFoundError(f"nothing to import at {uri}")
        fs.get(remote, artifact.path, recursive=fs.isdir(remote))
        return
    path = os.path.expanduser(uri[len("file://"):] if uri.startswith("file://") else uri)
    if os.path.isdir(path):
        shutil.copytree(path, artifact.path)
    elif os.path.isfile(path):
        shutil.copyfile(path, artifact.path)
    else:
        raise FileNotFoundError(f"nothing to import at {uri}")
'''


def importer_spec(artifact_class: type[Artifact]) -> ComponentSpec:
    """The importer component for one artifact type."""
    return ComponentSpec(
        name="importer",
        function="importer",
        source=_SOURCE,
        inputs={
            "uri": InputDef(kind="parameter", type="STRING"),
            "metadata": InputDef(kind="parameter", type="STRUCT", optional=True, default={}),
        },
        outputs={"artifact": OutputDef(kind="artifact", type=artifact_class.schema_title)},
        options={"importer": True},
        description="Imports an existing artifact (dsl.importer).",
        filename="<shipyard importer>",
    )


def is_importer(component: ComponentSpec) -> bool:
    return bool(component.options.get("importer")) and component.function == "importer"


def importer(
    artifact_uri: Any,
    artifact_class: type[Artifact],
    reimport: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> PipelineTask:
    """A task importing ``artifact_uri`` as an ``artifact_class`` (module docstring);
    its output is ``.output`` (``.outputs["artifact"]``)."""
    if not (isinstance(artifact_class, type) and issubclass(artifact_class, Artifact)):
        raise InvalidArgument(
            f"dsl.importer artifact_class must be an artifact type such as dsl.Dataset, "
            f"got {artifact_class!r}",
            field="artifact_class",
        )
    if not isinstance(artifact_uri, str | Channel):
        raise InvalidArgument(
            "dsl.importer artifact_uri must be a string or a pipeline parameter, "
            f"got {artifact_uri!r}",
            field="artifact_uri",
        )
    if isinstance(artifact_uri, str) and not artifact_uri.strip():
        raise InvalidArgument("dsl.importer artifact_uri is empty", field="artifact_uri")
    if not isinstance(reimport, bool):
        raise InvalidArgument("dsl.importer reimport must be True or False", field="reimport")
    values = dict(metadata or {})
    if any(isinstance(v, Channel) for v in values.values()):
        raise InvalidArgument(
            "dsl.importer metadata takes constant values (pipeline values are not supported)",
            field="metadata",
        )
    spec = importer_spec(artifact_class)
    builder = current_builder("dsl.importer")
    key = builder.add_component(spec, None)
    task = PipelineTask(builder.task_name("importer"), spec, key)
    bind_arguments(task, spec.inputs, spec.outputs,
                   {"uri": artifact_uri, "metadata": values}, builder)  # fmt: skip
    if reimport:
        task.set_caching_options(enable_caching=False)
    builder.add_task(task)
    return task
