"""``cli.py verify OUTPUT``: check a stage's output against its manifest and run record.

Checks that every part file reads with the stage's schema, that every video of the manifest is in
the output exactly once at video level (extract/embed: as whole videos in one part file; score:
one row per video), that no frame row is duplicated, that the counts per status equal those of the
run record; temporary files left by an interrupted writer are reported as warnings.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional

import pyarrow as pa

from . import storage
from .pipeline.common import MANIFEST_RECORD
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
    # Memory stays at one part file plus one entry per video: a video lives in one part, so a
    # duplicated frame can only sit inside one part, and a video in two parts shows in ``homes``.
    homes: Dict[str, str] = {}  # video_id -> the part file holding it
    statuses: Dict[str, str] = {}
    for f in storage.list_data_files(out_uri):
        cols = ["video_id", status_column] + ([] if stage == "score" else ["frame_index"])
        try:
            t = storage.read_parquet_files([f], columns=cols)
        except Exception as exc:  # noqa: BLE001 - an unreadable part is a finding, not a crash
            problems.append(f"{f}: unreadable part file ({exc})")
            continue
        keys: collections.Counter = collections.Counter()
        for row in t.to_pylist():
            vid = row["video_id"]
            if homes.setdefault(vid, f) != f:
                problems.append(f"{vid}: in 2 part files ({homes[vid]}, {f})")
            statuses[vid] = row[status_column]
            if stage == "score":
                keys[vid] += 1
            elif row["frame_index"] is not None:
                keys[(vid, row["frame_index"])] += 1
        dup = [k for k, n in keys.items() if n > 1]
        if dup:
            problems.append(f"{f}: {len(dup)} duplicated {'videos' if stage == 'score' else 'frames'}, "
                            f"e.g. {dup[0]}")

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
