"""The Parquet schemas, declared once and shared by every writer and reader.

Manifest -> faces -> embeddings -> scores. Every stage keeps the manifest columns so that a result
can always be traced back to its video, dataset, manipulation method and split.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa

N_LANDMARKS = 68

# Video-level statuses: every input video ends in exactly one of these in every stage's output.
VIDEO_OK = "ok"
MISSING = "missing"  # the manifest names a file that does not exist
UNREADABLE = "unreadable"  # exists but cannot be opened/decoded as a video
NO_FRAMES = "no_frames"  # opens, but holds no decodable frame
NO_FACE = "no_face"  # frames decoded, no face found in any of them
TOO_FEW_FACES = "too_few_faces"  # scoring: fewer than two usable faces, cannot pair
# scoring: a score, but too little evidence for a verdict (fewer usable faces than score.min_faces in
# every face track); the score is kept for inspection, never taken as a verdict or counted in an AUC
LOW_EVIDENCE = "low_evidence"
STATIC = "static"  # scoring: every face track long enough is still (a photo, a looped still image)
# detect: a score, but the video's faces lie far outside what the bundle was calibrated on (other
# footage than its calibration videos): no verdict
OUTSIDE_DOMAIN = "outside_calibration_domain"
EMBED_ERROR = "embed_error"  # a stored crop could not be decoded/embedded
ERROR = "error"  # anything unexpected, with the exception text

# Frame-level statuses in the faces table.
FRAME_OK = "ok"
FRAME_NO_FACE = "no_face"

LABELS = ("real", "fake", "unknown")
SPLITS = ("train", "val", "test", "unknown")

MANIFEST_FIELDS = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("method", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
]
MANIFEST_SCHEMA = pa.schema(MANIFEST_FIELDS)
MANIFEST_COLUMNS = [f.name for f in MANIFEST_FIELDS]

_VIDEO_STATUS_FIELDS = [
    pa.field("video_status", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
]

FACES_SCHEMA = pa.schema(
    MANIFEST_FIELDS
    + _VIDEO_STATUS_FIELDS
    + [
        # null for a video-level failure row (the video yielded no frames at all)
        pa.field("frame_index", pa.int32()),
        # the face track of the video this face belongs to (0, 1, ... by first appearance): a frame
        # holds one row per tracked face. Null on a frame without a face; files written before
        # tracks have none, and read as track 0
        pa.field("track", pa.int16()),
        # how much the face's window changed since the previous sampled frame: mean absolute
        # difference in grey levels (0-255) at the same place; null on a video's first frame. A
        # still face (a poster, a looped photo) stays near 0 where a live one does not
        pa.field("motion", pa.float32()),
        pa.field("timestamp", pa.float64()),
        pa.field("video_frame_count", pa.int32()),
        pa.field("frame_width", pa.int32()),
        pa.field("frame_height", pa.int32()),
        # face box (x, y, w, h) in frame pixels, as detected
        pa.field("box", pa.list_(pa.int32(), 4)),
        # the 1.3x enlarged, clipped crop window (x0, y0, x1, y1) in frame pixels
        pa.field("crop_box", pa.list_(pa.int32(), 4)),
        # 68 (x, y) points in crop pixel coordinates, flattened x0, y0, x1, y1, ...
        pa.field("landmarks", pa.list_(pa.float32(), 2 * N_LANDMARKS)),
        pa.field("crop", pa.binary()),
        pa.field("crop_format", pa.string()),
        # the input file as it was read (size and modification time, storage.signature): a rerun
        # redoes a video whose file has changed since
        pa.field("source_signature", pa.string()),
    ]
)

# Columns added after files were first written: a file without one reads it as nulls
LATER_FIELDS = {c: FACES_SCHEMA.field(c) for c in ("track", "motion", "source_signature")}

EMBEDDINGS_KEY_COLUMNS = MANIFEST_COLUMNS + ["video_status", "status", "error", "frame_index", "track", "motion"]


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema(
        MANIFEST_FIELDS
        + _VIDEO_STATUS_FIELDS
        + [
            pa.field("frame_index", pa.int32()),
            pa.field("track", pa.int16()),
            pa.field("motion", pa.float32()),
            pa.field("embedding", pa.list_(pa.float32(), dim)),
        ]
    )


SCORES_SCHEMA = pa.schema(
    MANIFEST_FIELDS
    + [
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        # mean score of the video's pairs (log-likelihood, or regional_gmm's z-score); higher = more
        # real. Null when not scorable.
        pa.field("score", pa.float64()),
        # of the face track the score comes from (the video's most anomalous one)
        pa.field("n_faces", pa.int32()),
        pa.field("n_pairs", pa.int32()),
        pa.field("track", pa.int16()),
        # face tracks long enough to be scored (score.min_faces usable faces, not still)
        pa.field("n_tracks", pa.int32()),
        pa.field("min_pair_score", pa.float64()),
        pa.field("median_pair_score", pa.float64()),
    ]
)


def empty_row(schema: pa.Schema) -> dict:
    return {name: None for name in schema.names}


def table_from_rows(rows: list, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def first_row_per_video(table: pa.Table) -> pa.Table:
    """One row per video, in order of first appearance: each column's value in its first row."""
    others = [c for c in table.column_names if c != "video_id"]
    grouped = table.group_by("video_id", use_threads=False).aggregate([(c, "first") for c in others])
    return grouped.rename_columns([c[:-len("_first")] if c.endswith("_first") else c for c in grouped.column_names])


def embeddings_to_numpy(column) -> np.ndarray:
    """An ``embedding`` column (fixed-size lists, no nulls) -> (N, D) float32, without Python floats."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = arr.type.list_size
    if len(arr) == 0:
        return np.zeros((0, dim), np.float32)
    return arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


def embeddings_from_numpy(values: np.ndarray, valid: Optional[np.ndarray] = None) -> pa.FixedSizeListArray:
    """(N, D) float32 -> the ``embedding`` column; rows where ``valid`` is False are null."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    n, dim = values.shape
    mask = None if valid is None else pa.array(~np.asarray(valid, bool))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dim, mask=mask)
