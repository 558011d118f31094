"""The manifest: one row per video (video_id, uri, label, dataset, method, split).

Built from a folder laid out as ``real/`` and ``fake/<method>/``, from a CSV or Parquet file, or
from a dataset adapter (``datasets.adapters``). A malformed manifest is a configuration error and
fails before any work starts, naming the file, the row and the cause.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from typing import Dict, Iterable, List, Mapping, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .. import schema, storage
from ..text import utf8_safe

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class ManifestError(ValueError):
    """A malformed manifest or input folder; raised before any video is processed."""


def manifest_table(rows: Iterable[Mapping[str, object]], source: str = "manifest") -> pa.Table:
    """Validate rows and build the manifest table (schema.MANIFEST_SCHEMA)."""
    rows = list(rows)
    clean: List[Dict[str, str]] = []
    seen: Dict[str, int] = {}
    for i, row in enumerate(rows):
        missing = [c for c in ("video_id", "uri") if not row.get(c)]
        if missing:
            raise ManifestError(f"{source}: row {i} lacks required column(s) {', '.join(missing)}: {dict(row)}")
        raw_label = row.get("label")
        if raw_label is not None and not isinstance(raw_label, str):  # 0/1, True/False: which is fake?
            raise ManifestError(f"{source}: row {i} ({row['video_id']}) has label {raw_label!r}; expected one of "
                                f"{', '.join(schema.LABELS)} (numbers are not read as labels)")
        label = str(raw_label or "unknown").strip().lower()
        if label not in schema.LABELS:
            raise ManifestError(
                f"{source}: row {i} ({row['video_id']}) has label {row.get('label')!r}; "
                f"expected one of {', '.join(schema.LABELS)}")
        split = str(row.get("split") or "unknown").strip().lower()
        if split not in schema.SPLITS:
            raise ManifestError(
                f"{source}: row {i} ({row['video_id']}) has split {row.get('split')!r}; "
                f"expected one of {', '.join(schema.SPLITS)}")
        vid = str(row["video_id"])
        if vid in seen:
            raise ManifestError(f"{source}: video_id {vid!r} appears in rows {seen[vid]} and {i}")
        seen[vid] = i
        clean.append(dict(video_id=vid, uri=str(row["uri"]), label=label,
                          dataset=str(row.get("dataset") or "unknown"),
                          method=str(row.get("method") or ("original" if label == "real" else "unknown")),
                          split=split))
    check_one_id_per_file(clean, source)
    return pa.Table.from_pylist(clean, schema=schema.MANIFEST_SCHEMA)


def check_one_id_per_file(rows: List[Dict[str, str]], source: str) -> None:
    """One file under several ids: refused when they disagree on label or split (a video on both
    sides of a split, or both real and fake, is a leak); a warning otherwise (counted twice)."""
    by_uri: Dict[str, List[Dict[str, str]]] = {}
    for r in rows:
        by_uri.setdefault(posixpath.normpath(r["uri"]), []).append(r)
    repeated = {u: rs for u, rs in by_uri.items() if len(rs) > 1}
    for uri, rs in repeated.items():
        if len({(r["label"], r["split"]) for r in rs}) > 1:
            listed = "; ".join(f"{r['video_id']}: {r['label']}/{r['split']}" for r in rs)
            raise ManifestError(f"{source}: {uri} is listed as {len(rs)} videos with different labels or splits "
                                f"({listed})")
    if repeated:
        uri, rs = next(iter(repeated.items()))
        print(f"manifest: warning: {len(repeated)} file(s) listed under several video ids, each scored and counted "
              f"once per id, e.g. {uri} as {', '.join(r['video_id'] for r in rs)}", flush=True)


def manifest_from_folder(root: str, dataset: Optional[str] = None, split: str = "test") -> pa.Table:
    """``root/real/**`` -> real/original; ``root/fake/<method>/**`` -> fake/<method>.

    A folder without that layout is taken as unlabelled videos (label unknown).
    """
    fs, base = storage.url_to_fs(root)
    if not fs.isdir(base):
        raise ManifestError(f"{root}: not a folder")
    dataset = dataset or posixpath.basename(base.rstrip("/")) or "videos"
    rows = []
    for path in sorted(fs.find(base)):
        if not path.lower().endswith(VIDEO_EXTENSIONS):
            continue
        if utf8_safe(path) != path:  # bytes that are not UTF-8: no URI column (nor JSON, nor Parquet) holds them
            raise ManifestError(f"{utf8_safe(path)}: the file name is not valid UTF-8; rename it (e.g. `convmv -f "
                                f"latin1 -t utf8`), or give a manifest that leaves it out")
        rel = posixpath.relpath(path, base)
        parts = rel.split("/")
        if parts[0] == "real":
            label, method = "real", "original"
        elif parts[0] == "fake" and len(parts) > 2:
            label, method = "fake", parts[1]
        elif parts[0] == "fake":
            label, method = "fake", "unknown"
        else:
            label, method = "unknown", "unknown"
        uri = fs.unstrip_protocol(path) if "://" in root else path
        rows.append(dict(video_id=f"{dataset}/{posixpath.splitext(rel)[0]}", uri=uri, label=label,
                         dataset=dataset, method=method, split=split))
    if not rows:
        raise ManifestError(f"{root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found")
    return manifest_table(rows, source=root)


def read_manifest_file(uri: str) -> pa.Table:
    """A CSV or Parquet manifest. Relative ``uri`` entries are resolved against the file's folder."""
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {uri}") from None
    if uri.endswith(".parquet"):
        try:
            rows = pq.read_table(pa.BufferReader(data)).to_pylist()
        except pa.ArrowInvalid as exc:
            raise ManifestError(f"{uri}: not a readable Parquet file ({exc})") from None
    else:
        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ManifestError(f"{uri}: not a readable CSV file ({exc})") from None
        if reader.fieldnames is None or not {"video_id", "uri"} <= set(reader.fieldnames):
            # a CSV with only a uri column is accepted: video_id is then derived from the path
            if reader.fieldnames and "uri" in reader.fieldnames:
                rows = [dict(r, video_id=posixpath.splitext(r["uri"])[0]) for r in rows]
            else:
                raise ManifestError(
                    f"{uri}: a manifest needs columns video_id and uri (have: {reader.fieldnames})")
    base = posixpath.dirname(uri)
    for r in rows:
        u = str(r.get("uri") or "")
        if u and "://" not in u and not u.startswith("/"):
            r["uri"] = storage.join(base, u)
    return manifest_table(rows, source=uri)


def load_manifest(source: str, adapter: Optional[str] = None, split: Optional[str] = None,
                  **adapter_kwargs) -> pa.Table:
    """The manifest of ``source``: an adapter's dataset root, a manifest file, or a video folder."""
    if adapter:
        from .adapters import create_dataset_adapter

        table = create_dataset_adapter(adapter, split=split, **adapter_kwargs).build(source)
    elif source.endswith((".csv", ".parquet")):
        table = read_manifest_file(source)
    else:
        fs, base = storage.url_to_fs(source)
        candidate = posixpath.join(base, "manifest.parquet")
        if fs.isdir(base) and fs.exists(candidate):
            table = read_manifest_file(fs.unstrip_protocol(candidate) if "://" in source else candidate)
            unlisted = unlisted_videos(source, table)
            if unlisted:  # the folder's manifest wins: say what it leaves out
                print(f"manifest: warning: {len(unlisted)} video file(s) under {source} are not in its "
                      f"manifest.parquet and are not processed, e.g. {unlisted[0]}", flush=True)
        else:
            table = manifest_from_folder(source)
    if table.num_rows == 0:
        raise ManifestError(f"{source}: the manifest lists no videos")
    if split:
        mask = pa.compute.equal(table["split"], split)
        table = table.filter(mask)
        if table.num_rows == 0:
            raise ManifestError(f"{source}: no video of split {split!r} in the manifest")
    return table


def unlisted_videos(folder: str, table: pa.Table) -> List[str]:
    """Video files under ``folder`` that ``table`` (its manifest) does not name."""
    fs, base = storage.url_to_fs(folder)
    listed = {storage.url_to_fs(u)[1] if "://" in u else os.path.normpath(os.path.join(base, u))
              for u in table["uri"].to_pylist()}
    return sorted(p for p in fs.find(base) if p.lower().endswith(VIDEO_EXTENSIONS)
                  and os.path.normpath(p) not in listed and p not in listed)


def write_manifest(table: pa.Table, uri: str) -> None:
    """A manifest as Parquet, or CSV when ``uri`` ends in .csv."""
    if uri.endswith(".csv"):
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        storage.write_bytes_atomic(uri, sink.getvalue().to_pybytes())
    else:
        storage.write_parquet_atomic(table, uri)


def describe_manifest(table: pa.Table) -> str:
    """'N videos: R real, F fake; by method ...; by split ...' for the command line."""
    import collections

    def counts(col: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(collections.Counter(table[col].to_pylist()).items()))

    return f"{table.num_rows} videos; label: {counts('label')}; method: {counts('method')}; split: {counts('split')}"
