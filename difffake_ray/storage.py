"""Every read and write goes through fsspec, so a local path, ``file://``, ``memory://``, ``s3://`` or
``gs://`` works the same (the remote ones once the user installs s3fs/gcsfs).

Writes are atomic: data goes to a hidden temporary name in the same folder and is then moved into
place, so a reader never takes a half-written file for a complete one. Readers skip names starting
with ``.`` or ``_`` (pyarrow's convention), which hides temporaries and run records.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


TEMP_PREFIX = ".tmp-"  # atomic writes go to this hidden name first; readers skip it



class ModelFileError(ValueError):
    """A model file (a backbone, an anomaly model) that cannot be used: named, with its cause, in
    one line."""

def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def expand_home(uri: str) -> str:
    """``~`` and ``~user`` in a local path, expanded: the one place where they are (fsspec would
    otherwise write to a folder named ``~`` under the working directory)."""
    import os

    return uri if "://" in uri else os.path.expanduser(uri)


def absolute(uri: str) -> str:
    """A local path made absolute (Ray workers do not share the driver's working directory)."""
    import os

    if "://" in uri:
        return uri
    return os.path.abspath(expand_home(uri))


def url_to_fs(uri: str) -> Tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(expand_home(uri))
    return fs, path


def join(base: str, *parts: str) -> str:
    if "://" in base:
        proto, rest = base.split("://", 1)
        return f"{proto}://" + posixpath.join(rest, *parts)
    import os

    return os.path.join(base, *parts)


def open_uri(uri: str, mode: str = "rb"):
    return fsspec.open(expand_home(uri), mode).open()


def exists(uri: str) -> bool:
    fs, path = url_to_fs(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = url_to_fs(uri)
    fs.makedirs(path, exist_ok=True)


def read_bytes(uri: str) -> bytes:
    fs, path = url_to_fs(uri)
    return fs.cat_file(path)


def confirm_missing(uri: str) -> None:
    """After a FileNotFoundError: raise the real cause when it was not a missing file (fsspec's
    HTTP filesystem reports a refused connection as not found)."""
    if uri.startswith(("http://", "https://")):
        fs, path = url_to_fs(uri)
        try:
            fs.cat_file(path, start=0, end=1)
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - aiohttp's and others' own types
            raise ConnectionError(f"{uri}: cannot be read ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


class TooLargeError(ValueError):
    """A file larger than what it should hold: never read on (a link to /dev/zero, an endless body)."""


def read_bytes_at_most(uri: str, limit: int) -> bytes:
    """The bytes of ``uri``, read in chunks and refused past ``limit``: a file that claims no size
    or lies about it (a device, a stream) cannot make the reader hold more than that."""
    chunks, total = [], 0
    with open_uri(uri, "rb") as fh:
        while True:
            chunk = fh.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise TooLargeError(f"{uri}: larger than the {limit} bytes it should hold; not read on")
    return b"".join(chunks)


def _with_protocol(fs: fsspec.AbstractFileSystem, path: str, like: str) -> str:
    if "://" in like:
        return fs.unstrip_protocol(path)
    return path


class WriteError(OSError):
    """A write that failed for a reason of the storage (disk full, permission): the path named."""


def write_bytes_atomic(uri: str, data: bytes) -> None:
    import errno

    fs, path = url_to_fs(uri)
    parent, name = posixpath.split(path)
    tmp = posixpath.join(parent, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{name}")
    try:
        fs.makedirs(parent, exist_ok=True)
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        fs.mv(tmp, path)
    except OSError as exc:
        with_cause = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
                      errno.EROFS: "read-only filesystem"}.get(exc.errno, exc.strerror or type(exc).__name__)
        try:
            if fs.exists(tmp):
                fs.rm(tmp)  # what did fit of it
        except OSError:
            pass
        raise WriteError(exc.errno, f"cannot write {uri}: {with_cause}") from None


def write_text_atomic(uri: str, text: str) -> None:
    write_bytes_atomic(uri, text.encode("utf-8"))


def write_json_atomic(uri: str, obj: Any) -> None:
    write_text_atomic(uri, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_parquet_atomic(table: pa.Table, uri: str, compression: str = "zstd") -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    write_bytes_atomic(uri, sink.getvalue().to_pybytes())


def signature(info: dict) -> str:
    """What identifies a file's content cheaply, from its listing entry: size and modification
    time (or an object store's ETag / last-modified). A rewritten file gets a new one."""
    changed = next((info[k] for k in ("mtime", "LastModified", "last_modified", "ETag", "etag", "updated")
                    if info.get(k) is not None), "")
    return f"{info.get('size')}:{changed}"


def file_signature(uri: str) -> Optional[str]:
    """``signature`` of one file, or None when it is not there."""
    fs, path = url_to_fs(uri)
    try:
        return signature(fs.info(path))
    except FileNotFoundError:
        return None


def file_signatures(uris: Iterable[str], threads: int = 16) -> dict:
    """{uri: signature or None} of many files; an object store's requests run in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    uris = list(uris)
    if not uris:
        return {}
    if all(not is_remote(u) for u in uris):
        return {u: file_signature(u) for u in uris}
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(uris, pool.map(file_signature, uris)))


def data_file_signatures(dir_uri: str, suffix: str = ".parquet") -> dict:
    """{URI: signature} of the complete data files under a folder, from one listing."""
    fs, path = url_to_fs(dir_uri)
    if not fs.exists(path):
        return {}
    found = {}
    for p, info in fs.find(path, detail=True).items():
        rel = posixpath.relpath(p, path)
        if p.endswith(suffix) and not any(part.startswith((".", "_")) for part in rel.split("/")):
            found[_with_protocol(fs, p, dir_uri)] = signature(info)
    return dict(sorted(found.items()))


def list_data_files(dir_uri: str, suffix: str = ".parquet") -> List[str]:
    """Complete data files under a folder (recursively), sorted, with the URI's protocol kept."""
    fs, path = url_to_fs(dir_uri)
    if not fs.exists(path):
        return []
    found = []
    for p in fs.find(path):
        rel = posixpath.relpath(p, path)
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        if p.endswith(suffix):
            found.append(_with_protocol(fs, p, dir_uri))
    return sorted(found)


def read_parquet_files(files: Iterable[str], columns: Optional[List[str]] = None,
                       schema: Optional[pa.Schema] = None) -> pa.Table:
    from .schema import LATER_FIELDS

    tables = []
    for f in files:
        fs, path = url_to_fs(f)
        with fs.open(path, "rb") as fh:
            part = pq.ParquetFile(fh)  # one read of the footer: the schema and then the columns
            later = []
            if columns is not None:  # a column added after the file was written reads as nulls
                present = set(part.schema_arrow.names)
                later = [c for c in columns if c not in present and c in LATER_FIELDS]
            t = part.read(columns=[c for c in columns if c not in later] if later else columns)
            for c in later:
                t = t.add_column(columns.index(c), LATER_FIELDS[c], pa.nulls(t.num_rows, LATER_FIELDS[c].type))
        if schema is not None:
            t = t.select([n for n in schema.names if n in t.column_names])
            target = pa.schema([schema.field(n) for n in t.column_names])
            t = t.cast(target)
        tables.append(t)
    if not tables:
        if schema is None:
            return pa.table({})
        target = schema if columns is None else pa.schema([schema.field(c) for c in columns])
        return target.empty_table()
    return pa.concat_tables(tables)


def read_parquet_dir(dir_uri: str, columns: Optional[List[str]] = None,
                     schema: Optional[pa.Schema] = None) -> pa.Table:
    return read_parquet_files(list_data_files(dir_uri), columns=columns, schema=schema)


def parquet_dataset(dir_uri: str, schema: Optional[pa.Schema] = None):
    """The complete part files under a folder as one ``pyarrow.dataset``: what the driver's
    bookkeeping scans, so that a count over 250,000 parts reads them in parallel, projected to the
    columns it needs and filtered at the row groups, never one file after another.

    A local folder gets pyarrow's native filesystem; any other URI reads through its fsspec one."""
    return _parquet_dataset(dir_uri, [url_to_fs(f)[1] for f in list_data_files(dir_uri)], schema)


def _parquet_dataset(dir_uri: str, paths: List[str], schema: Optional[pa.Schema] = None):
    """The dataset of ``paths``: part files under ``dir_uri``, as paths on its filesystem."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    fs, _ = url_to_fs(dir_uri)
    local = "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,))
    filesystem = pafs.LocalFileSystem() if local else pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    if not paths and schema is None:
        schema = pa.schema([])
    return pads.dataset(paths, schema=schema, format="parquet", filesystem=filesystem)


def scan_parts(dir_uri: str, columns: Optional[List[str]] = None, filter=None) -> Iterator[Tuple[str, pa.Table]]:
    """(part file URI, its rows) for each complete part file under a folder, from one parallel
    scan (``columns`` projected, ``filter`` pushed down): the scan yields a part's batches in
    order and together, so a part arrives whole and the driver holds one part at a time."""
    uri_of = {url_to_fs(u)[1]: u for u in list_data_files(dir_uri)}  # the scan names a part by its path
    dataset = _parquet_dataset(dir_uri, list(uri_of))
    if not dataset.files:
        return
    current, pending = None, []
    for tagged in dataset.scanner(columns=columns, filter=filter).scan_batches():
        if tagged.fragment.path != current and pending:
            yield uri_of.get(current, current), pa.Table.from_batches(pending)
            pending = []
        current = tagged.fragment.path
        pending.append(tagged.record_batch)
    if pending:
        yield uri_of.get(current, current), pa.Table.from_batches(pending)


def scan_batches(dir_uri: str, columns: List[str], filter=None):
    """Record batches of the complete part files under a folder (none for an empty folder),
    read in parallel, projected to ``columns``, with ``filter`` pushed down to the row groups."""
    dataset = parquet_dataset(dir_uri)
    if not dataset.files:
        return iter(())
    return dataset.to_batches(columns=columns, filter=filter)


def list_temporaries(dir_uri: str) -> List[str]:
    """``.tmp-*`` files under ``dir_uri``: what an interrupted atomic write left behind."""
    fs, path = url_to_fs(dir_uri)
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.find(path) if posixpath.basename(p).startswith(TEMP_PREFIX))


def remove_temporaries(dir_uri: str) -> int:
    """Delete the temporaries an interrupted writer left under ``dir_uri``. A stage calls this
    when it starts, before its own workers write (one driver per output folder)."""
    stale = list_temporaries(dir_uri)
    fs, _ = url_to_fs(dir_uri)
    for p in stale:
        fs.rm(p)
    return len(stale)


def pyarrow_filesystem(uri: str):
    """(pyarrow filesystem, path) for Ray Data readers/writers of any fsspec URI."""
    import pyarrow.fs as pafs

    fs, path = url_to_fs(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = url_to_fs(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)
