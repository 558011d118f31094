"""Part-file mapping on Ray Data: each input part file (whole videos) becomes output part file(s)
of the same name, written atomically, then a ``_done/<name>@<digest>`` marker naming the input
part's signature (size, modification time). A rerun skips parts whose marker matches the input as
it is now, from one listing, and redoes a part that upstream rewrote; a retried task rewrites the
same names.

Two stages, streamed the way Ray documents batch inference: CPU tasks read a part (projected to
the columns the worker needs) and, on a cluster with GPUs, prepare it (``prepare``: e.g. decode
and resize crops, on as many CPUs as the cluster has); an actor pool (one GPU per actor) runs the
worker on each whole part and writes its output. Reading and decoding overlap the model's work,
and memory stays bounded by the parts in flight, whatever the corpus size. Without GPUs the
workers prepare their own parts: the model and the decoding share the same cores."""

from __future__ import annotations

import contextlib
import posixpath
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import storage
from ..runtime import cluster_cpus, cluster_gpus

DONE_DIR = "_done"
ERRORS_DIR = "_errors"  # input parts that could not be read at all, one JSON each
PART, PART_ROWS, PART_SIGNATURE = "__part", "__part_rows", "__part_signature"  # between the two stages
# A part is one batch of the worker stage; Ray Data must not split its block on the way (a part of
# 16 videos x 40 crops at 380 px is ~280 MB), or the worker would see a fraction of a part.
MAX_PART_BLOCK_BYTES = 4 << 30
# Without GPUs, of each core: what the loading tasks reserve; the model's workers take the rest
LOADER_SHARE = 0.25


def load_parts(batch: Dict[str, np.ndarray], out_uri: str, out_schema: pa.Schema, in_columns: Optional[List[str]],
               prepare: Optional[Callable[[pa.Table], pa.Table]], partition_by: Optional[str] = None) -> pa.Table:
    """CPU stage: one input part -> its (prepared) rows, tagged with the part's name, size and
    signature (what its done marker records)."""
    tables = []
    for f, signature in zip(batch["file"], batch["signature"]):
        f, signature = str(f), str(signature)
        name = posixpath.basename(f)
        try:
            table = storage.read_parquet_files([f], columns=in_columns)
        except Exception as exc:  # noqa: BLE001 - one bad part must not stop the corpus
            _unreadable_part(f, name, exc, out_uri, out_schema, in_columns, partition_by)
            continue
        if table.num_rows == 0:  # nothing for the worker: the (empty) output is written here
            _write_part(out_uri, name, out_schema.empty_table(), partition_by, done=signature)
            continue
        if prepare is not None:
            table = prepare(table)
        n = table.num_rows
        tables.append(table.append_column(PART, pa.array([name] * n, pa.string()))
                           .append_column(PART_ROWS, pa.array([n] * n, pa.int64()))
                           .append_column(PART_SIGNATURE, pa.array([signature] * n, pa.string())))
    if not tables:
        return pa.table({"file": pa.array([], pa.string())})
    return pa.concat_tables(tables)


def _unreadable_part(f: str, name: str, exc: Exception, out_uri: str, out_schema: pa.Schema,
                     in_columns: Optional[List[str]], partition_by: Optional[str]) -> None:
    """A part that does not read: its videos get ``error`` rows where its key columns still read;
    otherwise the part is recorded under ``_errors/`` for the driver to name. No done marker
    either way, so a rerun tries the part again (and replaces those rows)."""
    from .. import schema

    cause = f"{f}: unreadable part file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    keys = [c for c in schema.EMBEDDINGS_KEY_COLUMNS if in_columns is None or c in in_columns]
    try:
        table = storage.read_parquet_files([f], columns=keys)
    except Exception:  # noqa: BLE001 - not even the keys: the driver names the file
        storage.write_json_atomic(storage.join(out_uri, ERRORS_DIR, name + ".json"), {"part": f, "error": cause})
        return
    if "frame_index" not in out_schema.names:  # one row per video
        table = schema.first_row_per_video(table)
    n = table.num_rows
    failed = {"video_status": schema.ERROR, "status": schema.ERROR, "error": cause}
    columns = {c: (pa.array([failed[c]] * n, pa.string()) if c in failed else
                   table[c] if c in table.column_names else pa.nulls(n, out_schema.field(c).type))
               for c in out_schema.names}
    _write_part(out_uri, name, pa.table(columns).cast(out_schema), partition_by, done=None)


class StageWriteError(ValueError):
    """The stage could not write its output (disk full, permission): one line naming the path."""


def _root_cause(exc: BaseException) -> BaseException:
    """The user-code exception behind Ray's task-error wrappers."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc


class UnreadableInputError(ValueError):
    """Input parts that could not be read at all: raised once everything else is done."""


def check_unreadable(out_uri: str, stage: str) -> None:
    bad = unreadable_parts(out_uri)
    if bad:
        raise UnreadableInputError(f"{stage}: {len(bad)} input part file(s) could not be read, their videos are not "
                                   f"in {out_uri} (a rerun tries them again); first: {bad[0]['error']}")


def unreadable_parts(out_uri: str) -> List[Dict[str, str]]:
    """The input parts this output's last run could not read at all (``_errors/``)."""
    fs, path = storage.url_to_fs(storage.join(out_uri, ERRORS_DIR))
    if not fs.exists(path):
        return []
    return [storage.read_json(storage.join(out_uri, ERRORS_DIR, posixpath.basename(p)))
            for p in sorted(fs.ls(path, detail=False)) if not posixpath.basename(p).startswith(".")]


def _write_part(out_uri: str, name: str, table: pa.Table, partition_by: Optional[str] = None,
                done: Optional[str] = None) -> None:
    """Write a part's output; then, unless ``done`` is None, its marker holding ``done`` (the input
    part's signature)."""
    if partition_by:
        for key in sorted(pc.unique(table[partition_by]).to_pylist()):
            storage.write_parquet_atomic(table.filter(pc.equal(table[partition_by], key)),
                                         storage.join(out_uri, f"{partition_by}={key}", name))
    else:
        storage.write_parquet_atomic(table, storage.join(out_uri, name))
    if done is not None:
        marker = done_marker(name, done)
        storage.write_bytes_atomic(storage.join(out_uri, DONE_DIR, marker), b"")
        fs, path = storage.url_to_fs(storage.join(out_uri, DONE_DIR))
        for old in fs.glob(posixpath.join(path, glob_escape(name) + "*")):  # markers of earlier versions of the part
            if posixpath.basename(old) != marker and posixpath.basename(old).split("@")[0] == name:
                fs.rm(old)


def done_marker(name: str, signature: str) -> str:
    """The done marker's file name: the part's name and a digest of its input's signature."""
    import hashlib

    return f"{name}@{hashlib.sha1(signature.encode('utf-8')).hexdigest()[:16]}"


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


class PartMapper:
    """Worker stage: ``make_worker()(part table) -> output table (or rows)``, written as the part's
    output file(s) and its done marker."""

    def __init__(self, make_worker: Callable[[], Any], out_uri: str, out_schema: pa.Schema,
                 partition_by: Optional[str] = None, prepare: Optional[Callable[[pa.Table], pa.Table]] = None):
        self.worker = make_worker()
        self.out_uri, self.out_schema, self.partition_by = out_uri, out_schema, partition_by
        self.prepare = prepare  # set when preparing is this stage's job (no GPUs), not the loader's

    def __call__(self, batch: pa.Table) -> Dict[str, List[Any]]:
        if PART not in batch.column_names:  # only empty parts in this block: written by the loader
            return {"file": [], "rows": []}
        names = pc.unique(batch[PART]).to_pylist()
        if len(names) != 1 or batch.num_rows != batch[PART_ROWS][0].as_py():
            raise RuntimeError(f"parts {names} arrived as a batch of {batch.num_rows} rows, not one whole part: "
                               f"Ray Data split or merged their blocks")
        signature = batch[PART_SIGNATURE][0].as_py()
        table = batch.drop_columns([PART, PART_ROWS, PART_SIGNATURE])
        out = self.worker(self.prepare(table) if self.prepare is not None else table)
        if not isinstance(out, pa.Table):
            out = pa.Table.from_pylist(out, schema=self.out_schema)
        _write_part(self.out_uri, names[0], out.cast(self.out_schema), self.partition_by, done=signature)
        return {"file": names, "rows": [out.num_rows]}


def pending_parts(in_uri: str, out_uri: str) -> Dict[str, str]:
    """The input parts still to do -> {part URI: its signature}: those without a done marker for
    the signature they have now (upstream rewrote the part: a video's file changed, a failure was
    redone). Outputs (and markers) of input parts that no longer exist are deleted first: their
    videos came back in a part of another name. One listing of each folder; a marker written
    before signatures (the part's bare name) counts as done."""
    inputs = storage.data_file_signatures(in_uri)
    names = {posixpath.basename(f) for f in inputs}
    markers = storage.join(out_uri, DONE_DIR)
    fs, path = storage.url_to_fs(markers)
    done = {posixpath.basename(p) for p in fs.ls(path, detail=False)} if fs.exists(path) else set()
    stale = [f for f in storage.list_data_files(out_uri) if posixpath.basename(f) not in names]
    stale += [storage.join(markers, m) for m in done if m.split("@")[0] not in names]
    for f in stale:
        storage.remove(f)
    return {f: sig for f, sig in inputs.items()
            if done_marker(posixpath.basename(f), sig) not in done and posixpath.basename(f) not in done}


@contextlib.contextmanager
def _whole_part_blocks():
    from ray.data import DataContext

    ctx = DataContext.get_current()
    before = ctx.target_max_block_size
    ctx.target_max_block_size = max(before or 0, MAX_PART_BLOCK_BYTES)
    try:
        yield
    finally:
        ctx.target_max_block_size = before


def map_parts(in_uri: str, out_uri: str, make_worker: Callable[[], Any], out_schema: pa.Schema,
              desc: str, use_gpu_if_available: bool = False, gpus_per_actor: float = 1.0,
              concurrency: Optional[int] = None, partition_by: Optional[str] = None,
              in_columns: Optional[List[str]] = None, prepare: Optional[Callable[[pa.Table], pa.Table]] = None,
              progress: bool = True) -> int:
    """Run ``make_worker()(part table) -> table`` over every pending part of ``in_uri``, each part
    read (and ``prepare``d) by a CPU task first. Returns rows written."""
    import ray
    from tqdm import tqdm

    storage.remove_temporaries(out_uri)
    storage.remove(storage.join(out_uri, ERRORS_DIR), recursive=True)  # what the last run could not read
    todo = pending_parts(in_uri, out_uri)
    if not todo:
        return 0
    gpus = cluster_gpus() if use_gpu_if_available else 0.0
    if gpus:  # one worker per GPU (or per share of one); the loading tasks read and prepare on the CPUs
        n_actors, kwargs, loader_cpus = int(gpus // gpus_per_actor), {"num_gpus": gpus_per_actor}, 1.0
    else:
        # A worker per core runs the model, and prepares its own parts: on the same cores, a separate
        # preparing stage would only add transfers (bench/score.py). Loading keeps a quarter of each.
        n_actors, kwargs, loader_cpus = int(cluster_cpus()), {"num_cpus": 1 - LOADER_SHARE}, LOADER_SHARE
    prepare_in_loader = bool(gpus)
    n_actors = max(1, min(concurrency or n_actors, len(todo)))
    total = 0
    with _whole_part_blocks():
        ds = ray.data.from_items([{"file": f, "signature": sig} for f, sig in todo.items()],
                                 override_num_blocks=len(todo))
        ds = ds.map_batches(load_parts, batch_size=1, batch_format="numpy", num_cpus=loader_cpus,
                            fn_kwargs=dict(out_uri=out_uri, out_schema=out_schema, in_columns=in_columns,
                                           prepare=prepare if prepare_in_loader else None,
                                           partition_by=partition_by))
        out = ds.map_batches(PartMapper, fn_constructor_kwargs=dict(make_worker=make_worker, out_uri=out_uri,
                                                                    out_schema=out_schema, partition_by=partition_by,
                                                                    prepare=None if prepare_in_loader else prepare),
                             batch_size=None, batch_format="pyarrow", zero_copy_batch=True,
                             # dead actors restart and their task is retried: Ray Data's default
                             compute=ray.data.ActorPoolStrategy(size=n_actors), **kwargs)
        bar = tqdm(total=len(todo), desc=desc, unit="part", disable=not progress)
        try:
            for row in out.iter_rows():
                total += int(row["rows"])
                bar.update(1)
        except Exception as exc:  # noqa: BLE001 - a Ray task error wraps the cause: name it in one line
            cause = _root_cause(exc)
            if isinstance(cause, storage.WriteError):
                raise StageWriteError(f"{desc}: {cause.strerror}; the parts written so far are kept, a rerun "
                                      f"resumes") from None
            raise
        bar.update(len(todo) - bar.n)  # empty parts, written by their loader
        bar.close()
    return total
