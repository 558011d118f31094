"""``cli.py verify OUTPUT``: check a stage's output against its manifest and run record.

Checks that every part file reads with the stage's schema, that every video of the manifest is in
the output exactly once at video level (extract/embed: as whole videos in one part file; score:
one row per video), that no frame row is duplicated, that the counts per status equal those of the
run record; temporary files left by an interrupted writer are reported as warnings.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from . import storage
from .pipeline.common import MANIFEST_RECORD, video_statuses
from .runtime import read_run_record


def _manifest_for(out_uri: str, record: Dict[str, Any], depth: int = 0) -> Optional[pa.Table]:
    """The manifest a stage's output answers to: extract keeps a copy beside its output; later
    stages follow their input's run record back to it."""
    path = storage.join(out_uri, MANIFEST_RECORD)
    if storage.exists(path):
        return storage.read_parquet_files([path])
    inputs = record.get("inputs", {})
    upstream = inputs.get("faces") or inputs.get("embeddings") or inputs.get("scores")
    if not upstream or depth > 4:
        return None
    try:
        return _manifest_for(upstream, read_run_record(upstream), depth + 1)
    except FileNotFoundError:
        return None


def _scan_output(out_uri: str, stage: str, status_column: str) -> Tuple[Dict[str, str], Dict[str, str], List[str]]:
    """-> ({video_id: the part file holding it}, {video_id: status}, problems), in one parallel scan.

    The driver holds one entry per video, never the rows: a video lives in one part file, so a
    duplicated frame can only sit inside one part (``storage.scan_parts`` gives each part whole),
    and a video in two parts shows in ``homes``. An unreadable part stops the fast scan; the
    slow path then reads part by part to name every bad file."""
    # a frame holds a row per face track (files written before tracks: one row per frame)
    tracked = stage != "score" and "track" in storage.parquet_dataset(out_uri).schema.names
    keys = ["video_id"] if stage == "score" else ["video_id", "frame_index"] + (["track"] if tracked else [])
    cols = ["video_id", status_column] + keys[1:]
    homes: Dict[str, str] = {}
    statuses: Dict[str, str] = {}
    problems: List[str] = []
    duplicates: Dict[str, List] = {}  # part file -> duplicated keys

    def take(part: str, table: pa.Table) -> None:
        for vid, status in video_statuses(table, status_column):
            if homes.setdefault(vid, part) != part:
                problems.append(f"{vid}: in 2 part files ({homes[vid]}, {part})")
            statuses[vid] = status
        keyed = table.filter(pc.is_valid(table["frame_index"])) if stage != "score" else table
        counted = keyed.group_by(keys).aggregate([([], "count_all")])
        dup = counted.filter(pc.greater(counted["count_all"], 1))
        if dup.num_rows:
            duplicates.setdefault(part, []).extend(zip(*(dup[k].to_pylist() for k in keys)))

    def report_duplicates() -> None:
        for part, dup in duplicates.items():
            example = dup[0] if stage != "score" else dup[0][0]
            problems.append(f"{part}: {len(dup)} duplicated {'videos' if stage == 'score' else 'frames'}, "
                            f"e.g. {example}")

    try:
        for part, table in storage.scan_parts(out_uri, cols):
            take(part, table)
    except (OSError, pa.ArrowException) as first:
        homes, statuses, problems, duplicates = {}, {}, [], {}
        for f in storage.list_data_files(out_uri):
            try:
                t = storage.read_parquet_files([f], columns=cols)
            except Exception as exc:  # noqa: BLE001 - an unreadable part is a finding, not a crash
                problems.append(f"{f}: unreadable part file ({exc})")
                continue
            take(f, t)
        if not problems:
            problems.append(f"{out_uri}: the output could not be scanned ({first})")
    report_duplicates()
    return homes, statuses, problems


def verify_output(out_uri: str, manifest_uri: Optional[str] = None) -> Dict[str, Any]:
    """A report: {"stage", "ok", "problems": [...], "warnings", "videos", "counts"}. The manifest is
    found through the run records unless ``manifest_uri`` names it."""
    problems: List[str] = []
    try:
        record = read_run_record(out_uri)
    except FileNotFoundError:
        return {"stage": None, "ok": False, "problems": [f"{out_uri}: no _run.json (not a finished stage output)"]}
    stage = record.get("stage")
    if stage not in ("extract", "embed", "score"):
        return {"stage": stage, "ok": True, "problems": [], "note": f"nothing to verify for stage {stage!r}"}

    status_column = "status" if stage == "score" else "video_status"
    homes, statuses, found = _scan_output(out_uri, stage, status_column)
    problems += found

    if manifest_uri:
        from .datasets.manifest import load_manifest

        manifest = load_manifest(manifest_uri)
    else:
        manifest = _manifest_for(out_uri, record)
    expected = set(manifest["video_id"].to_pylist()) if manifest is not None else None
    if expected is None:
        problems.append("no manifest found (extract's _manifest.parquet, via the run records' inputs); "
                        "name one with --manifest")
    else:
        missing = sorted(expected - set(homes))
        extra = sorted(set(homes) - expected)
        if missing:
            problems.append(f"{len(missing)} manifest videos missing from the output, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{len(extra)} videos not in the manifest, e.g. {extra[:3]}")

    counts = dict(collections.Counter(statuses.values()))
    recorded = record.get("counts", {}).get("videos")
    if recorded is not None and recorded != counts:
        problems.append(f"counts per status {counts} differ from the run record's {recorded}")
    # readers skip them and the next run of the stage removes them: worth a word, not a failure
    warnings = [f"temporary file left by an interrupted write: {t}" for t in storage.list_temporaries(out_uri)]
    return {"stage": stage, "ok": not problems, "problems": problems, "warnings": warnings,
            "videos": len(homes),
            "expected_videos": len(expected) if expected is not None else None, "counts": counts}
