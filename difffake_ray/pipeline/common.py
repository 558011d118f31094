"""Shared pieces of the batch stages: deterministic part-file names, resume bookkeeping, and the
per-status accounting every stage reports."""

from __future__ import annotations

import collections
import hashlib
from typing import Dict, Iterable, List, Mapping, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from .. import schema, storage

# extract's copy of its manifest, beside its output: what later stages and `verify` answer to
MANIFEST_RECORD = "_manifest.parquet"


def part_name(video_ids: Iterable[str]) -> str:
    """A part file named by the videos it holds: a retried batch overwrites its own file (atomic
    replace), so Ray's retries never duplicate rows."""
    digest = hashlib.sha1("\n".join(sorted(video_ids)).encode("utf-8")).hexdigest()[:20]
    return f"part-{digest}.parquet"


# What a rerun redoes by default: the file may be there now, the unexpected error may have passed.
# (unreadable, no_frames, no_face say something about the file itself: --redo-failed redoes them too.)
TRANSIENT_STATUSES = (schema.MISSING, schema.ERROR)


def resume_state(out_uri: str, redo_failed: bool = False) -> Tuple[Set[str], Dict[str, int]]:
    """What a rerun keeps of an output -> (video ids kept, {status or "changed": videos to redo}).

    Videos whose status is transient (every failure with ``redo_failed``), and videos whose input
    file has changed since it was read (size or modification time), are redone: the part files
    holding them are deleted, and every video of those parts is extracted again (a part is
    rewritten whole, never edited). Downstream stages redo the parts that were rewritten and drop
    their outputs of parts that no longer exist (``parts.pending_parts``)."""
    redo = (lambda s: s != schema.VIDEO_OK) if redo_failed else (lambda s: s in TRANSIENT_STATUSES)
    tracked = "source_signature" in storage.parquet_dataset(out_uri).schema.names  # older outputs: no record
    columns = ["video_id", "video_status"] + (["uri", "source_signature"] if tracked else [])
    status_of: Dict[str, str] = {}
    part_of: Dict[str, str] = {}
    read_as: Dict[str, Tuple[str, str]] = {}  # video -> (uri, signature when read)
    for part, table in storage.scan_parts(out_uri, columns):
        for vid, status in video_statuses(table):
            status_of[vid], part_of[vid] = status, part
        if tracked:
            first = schema.first_row_per_video(table.filter(pc.is_valid(table["source_signature"])))
            read_as.update(zip(first["video_id"].to_pylist(), zip(first["uri"].to_pylist(),
                                                                first["source_signature"].to_pylist())))
    reasons = {v: s for v, s in status_of.items() if redo(s)}
    kept = [v for v in read_as if v not in reasons]
    now = storage.file_signatures(read_as[v][0] for v in kept)
    reasons.update({v: "changed" for v in kept if now.get(read_as[v][0]) != read_as[v][1]})
    stale_parts = {part_of[v] for v in reasons}
    for part in stale_parts:
        storage.remove(part)
    return {v for v in status_of if part_of[v] not in stale_parts}, dict(collections.Counter(reasons.values()))


def video_statuses(table: pa.Table, status_column: str = "video_status") -> Iterable[Tuple[str, str]]:
    """(video_id, status) once per video of a per-frame or per-video table."""
    per_video = table.select(["video_id", status_column]).group_by(["video_id", status_column]).aggregate([])
    return zip(per_video["video_id"].to_pylist(), per_video[status_column].to_pylist())


def output_counts(out_uri: str, status_column: str = "video_status") -> Dict[str, object]:
    """{"videos": {status: n}, "rows": n, "ok_rows": n} over an output, in one parallel scan of
    the columns it needs. The driver holds one status per video, never the rows."""
    cols = ["video_id", status_column] + (["status"] if status_column != "status" else [])
    status_of: Dict[str, str] = {}
    rows = ok_rows = 0
    for batch in storage.scan_batches(out_uri, cols):
        rows += batch.num_rows
        ok_rows += int(pc.sum(pc.equal(batch.column("status"), schema.FRAME_OK)).as_py() or 0)
        status_of.update(video_statuses(pa.Table.from_batches([batch]), status_column))
    return {"videos": dict(collections.Counter(status_of.values())), "rows": rows, "ok_rows": ok_rows}


def summary_line(stage: str, counts: Mapping[str, int], seconds: float, extra: str = "") -> str:
    n = sum(counts.values())
    ok = counts.get("ok", 0)
    failed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "ok") or "none"
    rate = n / seconds if seconds > 0 else float("nan")
    return (f"{stage}: {n} videos: {ok} ok; failed: {failed}{'; ' + extra if extra else ''}; "
            f"{seconds:.1f} s, {rate:.2f} videos/s")


def rows_to_dicts(batch: Mapping[str, "object"]) -> List[Dict[str, object]]:
    """A Ray Data batch (dict of column arrays) -> list of row dicts."""
    keys = list(batch.keys())
    n = len(batch[keys[0]]) if keys else 0
    return [{k: (batch[k][i].item() if hasattr(batch[k][i], "item") else batch[k][i]) for k in keys}
            for i in range(n)]
