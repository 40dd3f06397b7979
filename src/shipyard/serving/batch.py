"""Batch prediction: a table file through a loaded model, in chunks, resumably.

``run(model, source, destination)`` streams ``source`` (CSV, Parquet or JSON Lines) with
pyarrow's streaming readers in chunks of exactly ``chunk_rows`` rows (the last one
shorter), predicts each chunk with ``model.predict`` (a ``LoadedModel``: its signature
checks and orders the columns) and writes the input columns, ``prediction`` (or
``prediction_0``, ``prediction_1``... for several outputs), ``model_name`` and
``model_version`` to ``destination`` as Parquet or CSV. Memory holds about one chunk at a
time, whatever the file's size.

Resuming: each finished chunk is written as a part file (Arrow IPC, written to a temporary
name, fsynced and renamed) in ``.<destination name>.parts/`` beside the destination, and a
manifest there (rewritten the same way after each part) lists the chunks done. A run that
finds a manifest of the same job (the same model version, source file (path, size and
modification time), chunk size and output format) reads past the chunks done instead of
predicting them again. At the end the parts are joined into ``destination`` (again through a
temporary file and a rename) and the parts folder is removed. A crash at any point leaves
either a part that is complete or none, so a rerun predicts each row exactly once in the
output.

Store-free: the SDK records the job in lineage (``batch_lineage``) through its session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.errors import InvalidArgument, NotFound, ShipyardError

INPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                 ".ndjson": "jsonl"}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_CHUNK_ROWS = 100_000
MAX_CHUNK_ROWS = 10_000_000
MANIFEST = "manifest.json"
OUTPUT_COLUMNS = ("prediction", "model_name", "model_version")
EXECUTORS = ("local", "ray")
_READ_BLOCK = 1 << 18  # bytes per CSV/JSON read block (the CSV reader reads ahead)

__all__ = ["BatchOutcome", "Progress", "run"]


@dataclass(frozen=True)
class Progress:
    """Where a job is, after each chunk: rows and chunks done (skipped ones included) and,
    when the source says (Parquet), the total rows."""

    rows: int
    chunks: int
    skipped_chunks: int
    total_rows: int | None


@dataclass(frozen=True)
class BatchOutcome:
    """A finished job: what went in and out, and how much was predicted this time."""

    job: str
    model: str
    model_version: int
    model_version_id: str
    model_artifact_id: str | None
    source: Path
    source_format: str
    source_digest: str
    source_size: int
    destination: Path
    output_format: str
    destination_digest: str
    destination_size: int
    rows: int
    chunks: int
    skipped_chunks: int
    chunk_rows: int
    seconds: float
    columns: list[str] = field(default_factory=list)


def run(model: Any, source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS, output_format: str | None = None,
        input_format: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        executor: str = "local", load_options: Any = None) -> BatchOutcome:
    """Predict every row of ``source`` into ``destination`` (see the module docstring).

    ``model`` is a ``LoadedModel``. ``InvalidArgument`` naming the field for a chunk size
    out of range, an unknown format, a source without the model's columns (naming the
    column) or a value the model's signature refuses; ``NotFound`` for a missing source.

    ``executor="ray"`` predicts the chunks as Ray tasks (``batch_ray``; ``load_options``:
    the ``LoadOptions`` the model was loaded with, which the Ray workers load it with too);
    the output, the manifest and resuming are the same.
    """
    started = time.monotonic()
    if executor not in EXECUTORS:
        raise InvalidArgument(f"executor must be one of {list(EXECUTORS)}, got "
                              f"{str(executor)[:64]!r}", field="executor")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) \
            or not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        raise InvalidArgument(f"chunk_rows must be a whole number from 1 to {MAX_CHUNK_ROWS}, "
                              f"got {chunk_rows!r}", field="chunk_rows")
    src = Path(source).expanduser().absolute()
    dest = Path(destination).expanduser().absolute()
    in_format = _format(input_format, src, INPUT_FORMATS, "input_format", "source")
    out_format = _format(output_format, dest, OUTPUT_FORMATS, "output_format", "destination")
    if not src.is_file():
        raise NotFound(f"no source file {str(src)[:300]!r}", field="source")
    if src == dest:
        raise InvalidArgument("destination must not be the source file", field="destination")
    if not dest.parent.is_dir():
        raise NotFound(f"the destination's folder {str(dest.parent)[:300]!r} does not exist",
                       field="destination")
    names = _signature_names(model)
    reader = _Reader(src, in_format, names)
    _check_columns(reader.schema, names)
    reader.with_types(_arrow_types(model))

    stat = src.stat()
    version = model.version
    job = hashlib.sha256(json.dumps([
        version.id, str(src), stat.st_size, stat.st_mtime_ns, chunk_rows, out_format,
    ]).encode()).hexdigest()[:32]
    parts = dest.parent / f".{dest.name}.parts"
    manifest = _Manifest.open(parts, job, {
        "model": f"{version.name}:{version.version}", "source": str(src),
        "chunk_rows": chunk_rows, "output_format": out_format})

    rows = chunks = skipped = 0
    remote = None
    if executor == "ray":
        from shipyard.registry.flavors import LoadOptions
        from shipyard.serving.batch_ray import RayChunks

        remote = RayChunks(model, load_options or LoadOptions())
    sent: dict[int, int] = {}  # chunks sent to Ray and not back yet: their rows

    def finish(index: int) -> None:
        manifest.mark(index, sent.pop(index))
        if on_progress is not None:
            on_progress(Progress(rows, chunks, skipped, reader.total_rows))

    try:
        for index, table in enumerate(_chunks(reader.batches(), chunk_rows)):
            if index in manifest.done:
                if manifest.done[index] != table.num_rows:  # pragma: no cover - changed
                    raise InvalidArgument("the source changed since the job's first run: "
                                          f"remove {parts} to start again", field="source")
                skipped += 1
            elif remote is not None:
                if remote.full():
                    for done in remote.finished():
                        finish(done)
                remote.submit(index, table, parts / _part_name(index))
                sent[index] = table.num_rows
            else:
                _write_part(parts / _part_name(index), _predict(model, table, version))
                manifest.mark(index, table.num_rows)
            rows += table.num_rows
            chunks += 1
            if on_progress is not None and index not in sent:
                on_progress(Progress(rows, chunks, skipped, reader.total_rows))
        while remote is not None and remote.in_flight:
            for done in remote.finished():
                finish(done)
    finally:
        if remote is not None:
            remote.close()
    if chunks == 0:
        raise InvalidArgument(f"source {src.name!r} has no rows", field="source")
    columns = _assemble(parts, chunks, dest, out_format)
    source_digest = _sha256(src)
    shutil.rmtree(parts, ignore_errors=True)
    return BatchOutcome(
        job=job, model=version.name, model_version=version.version,
        model_version_id=version.id, model_artifact_id=version.artifact_id, source=src,
        source_format=in_format, source_digest=source_digest, source_size=stat.st_size,
        destination=dest, output_format=out_format, destination_digest=_sha256(dest),
        destination_size=dest.stat().st_size, rows=rows, chunks=chunks,
        skipped_chunks=skipped, chunk_rows=chunk_rows,
        seconds=time.monotonic() - started, columns=columns)


# -- formats and the source -----------------------------------------------------------------


def _format(given: str | None, path: Path, known: dict[str, str], field: str,
            path_field: str) -> str:
    formats = sorted(set(known.values()))
    if given is not None:
        if given not in formats:
            raise InvalidArgument(f"{field} must be one of {formats}, got {given!r}",
                                  field=field)
        return given
    found = known.get(path.suffix.lower())
    if found is None:
        raise InvalidArgument(
            f"cannot tell the format of {path.name!r} from its suffix: name it "
            f"{', '.join(sorted(known))} or pass {field} (one of {formats})", field=path_field)
    return found


def _signature_names(model: Any) -> list[str] | None:
    signature = getattr(model, "signature", None)
    return None if signature is None else list(signature.names)


def _arrow_types(model: Any) -> dict[str, pa.DataType]:
    """The CSV column types the signature implies, so every block reads alike."""
    signature = getattr(model, "signature", None)
    if signature is None:
        return {}
    kinds = {"integer": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "string": pa.string(), "categorical": pa.string()}
    return {c.name: kinds[c.kind] for c in signature.columns if c.kind in kinds}


class _Reader:
    def __init__(self, path: Path, kind: str, names: list[str] | None) -> None:
        self.path, self.kind = path, kind
        self.total_rows: int | None = None
        self._types: dict[str, pa.DataType] = {}
        try:
            if kind == "parquet":
                import pyarrow.parquet as pq

                self._file = pq.ParquetFile(path)
                self.schema = self._file.schema_arrow
                self.total_rows = self._file.metadata.num_rows
            else:
                first = self._open()
                self.schema = first.schema
                first.close()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidArgument(f"cannot read {path.name!r} as {kind}: "
                                  f"{str(exc)[:300]}", field="source") from None

    def with_types(self, types: dict[str, pa.DataType]) -> None:
        self._types = {k: v for k, v in types.items() if k in self.schema.names}

    def _open(self) -> Any:
        if self.kind == "csv":
            from pyarrow import csv

            return csv.open_csv(self.path, read_options=csv.ReadOptions(
                block_size=_READ_BLOCK, use_threads=False),
                                convert_options=csv.ConvertOptions(column_types=self._types))
        from pyarrow import json as pajson

        return pajson.open_json(
            self.path, read_options=pajson.ReadOptions(block_size=_READ_BLOCK),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(list(self._types.items())) if self._types else None,
                unexpected_field_behavior="infer"))

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.kind == "parquet":
                yield from self._file.iter_batches(batch_size=65_536)
                return
            reader = self._open()
            order = self.schema.names
            try:
                for batch in reader:
                    if self.kind == "jsonl" and batch.schema.names != order:
                        # The typed columns come first from the JSON reader: the file's order.
                        names = batch.schema.names
                        batch = batch.select([n for n in order if n in names]
                                             + [n for n in names if n not in order])
                    yield batch
            finally:
                reader.close()
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"cannot read {self.path.name!r}: {str(exc)[:300]}",
                                  field="source") from None


def _check_columns(schema: pa.Schema, names: list[str] | None) -> None:
    for name in names or ():
        if name not in schema.names:
            raise InvalidArgument(f"the source has no column {name!r}, which the model takes "
                                  f"(its columns: {schema.names[:50]})", field=name)
    taken = [c for c in OUTPUT_COLUMNS if c in schema.names]
    if taken:
        raise InvalidArgument(f"the source already has a column {taken[0]!r}, which the "
                              "output adds", field=taken[0])


def _chunks(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """The stream as tables of exactly ``size`` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == size:
                yield pa.Table.from_batches(pending)
                pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending)


# -- predicting and writing ------------------------------------------------------------------


def _predict(model: Any, table: pa.Table, version: Any) -> pa.Table:
    frame = table.to_pandas()
    try:
        output = np.asarray(model.predict(frame))
    except ShipyardError as exc:
        raise type(exc)(exc.message, field=exc.field) from None
    except Exception as exc:
        raise InvalidArgument(f"the model failed on a chunk: {type(exc).__name__}: "
                              f"{str(exc)[:500]}", field="source") from None
    out = table
    if output.ndim == 1:
        out = out.append_column("prediction", pa.array(output))
    else:
        flat = output.reshape(len(output), -1)
        for j in range(flat.shape[1]):
            out = out.append_column(f"prediction_{j}", pa.array(flat[:, j]))
    n = table.num_rows
    out = out.append_column("model_name", pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([version.name])))
    return out.append_column("model_version", pa.array(np.full(n, version.version,
                                                                dtype=np.int64)))


def _part_name(index: int) -> str:
    return f"part-{index:08d}.arrow"


def _write_part(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    _fsync(tmp)
    os.replace(tmp, path)


def _assemble(parts: Path, chunks: int, dest: Path, kind: str) -> list[str]:
    """Join the parts, in order, into ``dest`` (through a temporary file)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    writer: Any = None
    schema: pa.Schema | None = None
    try:
        for index in range(chunks):
            with pa.memory_map(str(parts / _part_name(index))) as source:
                table = pa.ipc.open_file(source).read_all()
            if kind == "csv":  # CSV has no dictionary type
                table = table.set_column(table.schema.get_field_index("model_name"),
                                         "model_name",
                                         table["model_name"].cast(pa.string()))
            if schema is None:
                schema = table.schema
                if kind == "parquet":
                    import pyarrow.parquet as pq

                    # Dictionary pages only for text: on floats they cost as much as the
                    # rest of the job and rarely save space.
                    text = [f.name for f in schema if pa.types.is_string(f.type)
                            or pa.types.is_large_string(f.type)
                            or pa.types.is_dictionary(f.type)]
                    writer = pq.ParquetWriter(str(tmp), schema, use_dictionary=text)
                else:
                    from pyarrow import csv

                    writer = csv.CSVWriter(str(tmp), schema)
            elif table.schema != schema:
                table = table.cast(schema)
            writer.write_table(table)
            del table
    finally:
        if writer is not None:
            writer.close()
    _fsync(tmp)
    os.replace(tmp, dest)
    return [] if schema is None else list(schema.names)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Manifest:
    """The parts folder's record of the job and the chunks done (rewritten atomically)."""

    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.folder = folder
        self.data = data
        self.done: dict[int, int] = {int(k): int(v) for k, v in data.get("done", {}).items()}

    @classmethod
    def open(cls, folder: Path, job: str, about: dict[str, Any]) -> _Manifest:
        path = folder / MANIFEST
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                data = {}
            if isinstance(data, dict) and data.get("job") == job:
                return cls(folder, data)
            shutil.rmtree(folder)  # another job's leftovers: start this one afresh
        folder.mkdir(mode=0o700, exist_ok=True)
        manifest = cls(folder, {"job": job, **about, "done": {}})
        manifest.save()
        return manifest

    def mark(self, index: int, rows: int) -> None:
        self.done[index] = rows
        self.save()

    def save(self) -> None:
        self.data["done"] = {str(k): v for k, v in sorted(self.done.items())}
        path = self.folder / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.data))
        _fsync(tmp)
        os.replace(tmp, path)
