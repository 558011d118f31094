"""Video scores: pairs of a face track's usable faces, the anomaly model's score of each pair (a
log-likelihood), a track's score = their mean (higher = more real), and a video's score = its most
anomalous track's, among the tracks with enough evidence.

- Pairs are drawn with a seed taken from the track's frame numbers and the config's seed, never
  from a name: the same file gives the same score under any name, in the batch path and `detect`.
- A track counts when it holds at least ``min_faces`` usable faces and moves: a still face (a
  poster, a photo in the frame; the ``motion`` extract measured) changes between frames only by
  compression noise, and is not a face a differential score can judge. A background face therefore neither hides a fake face track
  (the video takes its lowest track) nor decides alone.
- A video whose tracks all fall short gets ``low_evidence`` (too few faces) or ``static`` (no
  motion): its score is kept for inspection, but it is not a verdict.

Embeddings arrive as Arrow tables of whole videos and stay numpy arrays: no row dicts, no
Python floats, whatever the batch size."""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from .combinations import combine_pairs
from .pairs import draw_pairs, pair_seed

# A track whose face window changes by less than this between sampled frames (median of the
# faces' ``motion``, grey levels 0-255) is still. Measured at 16 frames a video: looped still images
# and a poster on the synthetic corpus 0.000-0.002; the 100 realdev clips' main face tracks 1.7-45
# (the least moving a Wav2Lip output, then GRID studio clips at 2.1); Haar's false faces on a
# still background there 0.55 and 0.74, which this leaves out too.
STILL_MOTION = 1.0


class Track(NamedTuple):
    frames: np.ndarray  # (n,) frame indices, increasing
    embeddings: np.ndarray  # (n, D)
    motion: np.ndarray  # (n,) grey levels, NaN where unknown (a first frame, files before motion)

    @property
    def still(self) -> bool:
        known = self.motion[np.isfinite(self.motion)]
        return bool(len(known)) and float(np.median(known)) < STILL_MOTION


def track_ids(table: pa.Table) -> np.ndarray:
    """The ``track`` column as int (null, or no such column in files written before tracks: 0)."""
    if "track" not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    return pc.fill_null(table["track"], 0).to_numpy(zero_copy_only=False).astype(np.int64)


def tracks_by_video(table: pa.Table) -> Dict[str, Dict[int, Track]]:
    """{video_id: {track: Track}} of the usable faces, each track in frame order."""
    ok = table.filter(pc.and_(pc.equal(table["status"], schema.FRAME_OK), pc.is_valid(table["embedding"])))
    if ok.num_rows == 0:
        return {}
    ids = ok["video_id"].to_numpy(zero_copy_only=False)
    tracks = track_ids(ok)
    frames = ok["frame_index"].to_numpy(zero_copy_only=False)
    emb = schema.embeddings_to_numpy(ok["embedding"])
    motion = (ok["motion"].to_numpy(zero_copy_only=False).astype(np.float64) if "motion" in ok.column_names
              else np.full(ok.num_rows, np.nan))
    order = np.lexsort((frames, tracks, ids))
    ids, tracks, frames, emb, motion = ids[order], tracks[order], frames[order], emb[order], motion[order]
    starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (tracks[1:] != tracks[:-1])])
    ends = np.r_[starts[1:], len(ids)]
    out: Dict[str, Dict[int, Track]] = {}
    for s, e in zip(starts, ends):
        out.setdefault(str(ids[s]), {})[int(tracks[s])] = Track(frames[s:e], emb[s:e], motion[s:e])
    return out


def track_pairs(frames, n_pairs: int, min_gap: int, seed: int, pairing: str = "random") -> np.ndarray:
    """(n, 2) positions into ``frames`` of the pairs to score (adm/pairs.draw_pairs). The draw is
    seeded by ``seed`` and the frame numbers themselves: content, not a file name, decides it."""
    frames = np.asarray(frames)
    order = np.argsort(frames, kind="stable")
    rng = np.random.default_rng(pair_seed(frames[order], seed))
    pos = draw_pairs(frames[order], n_pairs, min_gap, rng, pairing)
    return order[pos] if len(pos) else pos


def _video_rows(table: pa.Table) -> List[Dict]:
    """One dict per video: its manifest columns, video status and error (the first row's), and the
    first embedding error among its frames."""
    grouped = schema.first_row_per_video(table.select(schema.MANIFEST_COLUMNS + ["video_status", "error"]))
    embed_errors = table.filter(pc.equal(table["status"], schema.EMBED_ERROR)).select(["video_id", "error"])
    embed_error: Dict[str, str] = {}
    for vid, err in zip(embed_errors["video_id"].to_pylist(), embed_errors["error"].to_pylist()):
        embed_error.setdefault(vid, err)
    return [dict(row, embed_error=embed_error.get(row["video_id"])) for row in grouped.to_pylist()]


class _Candidate(NamedTuple):
    row: int  # position of the video's row in the output
    track: int
    pairs: np.ndarray
    frames: np.ndarray
    enough: bool  # min_faces usable faces
    still: bool


def score_videos(table: pa.Table, model, meta: Dict, n_pairs: int, min_gap: int, seed: int,
                 keep_pairs: bool = False, min_faces: int = 2,
                 tracks: Optional[Dict[str, Dict[int, Track]]] = None, pairing: str = "random") -> List[Dict]:
    """Embedding rows of whole videos -> one score row per video (schema.SCORES_SCHEMA). With
    ``keep_pairs``, a scored row also holds "pair_detail": its track's frame indices, its pairs
    (positions into them) and each pair's score: what a single-video report draws. ``tracks``:
    ``tracks_by_video(table)``, when the caller needs it too and has it already."""
    videos = tracks_by_video(table) if tracks is None else tracks
    dim = table.schema.field("embedding").type.list_size
    out: List[Dict] = []
    feats, candidates = [], []
    for v in _video_rows(table):
        vid = v["video_id"]
        tracks = videos.get(vid, {})
        longest = max((len(t.frames) for t in tracks.values()), default=0)
        row = dict({c: v[c] for c in schema.MANIFEST_COLUMNS}, status=schema.VIDEO_OK, error=None, score=None,
                   n_faces=longest, n_pairs=0, min_pair_score=None, median_pair_score=None, track=None, n_tracks=0)
        if v["video_status"] != schema.VIDEO_OK:
            row.update(status=v["video_status"], error=v["error"])
        elif longest < 2:
            row.update(status=schema.TOO_FEW_FACES,
                       error=v["embed_error"] or f"{vid}: {longest} usable face(s) in a track, a pair needs 2")
        elif dim != meta["embedding_dim"]:
            row.update(status=schema.ERROR, error=f"{vid}: embedding dim {dim} != model's {meta['embedding_dim']}")
        else:
            for t, track in sorted(tracks.items()):
                if len(track.frames) < 2:
                    continue
                pairs = track_pairs(track.frames, n_pairs, min_gap, seed, pairing)
                a, b = track.embeddings[pairs[:, 0]], track.embeddings[pairs[:, 1]]
                feats.append(combine_pairs(meta["combination"], a, b, meta["l2_normalize"]))
                candidates.append(_Candidate(len(out), t, pairs, track.frames, len(track.frames) >= min_faces,
                                             track.still))
        out.append(row)
    if not feats:
        return out
    # one vectorised call over every pair of the batch
    X = np.concatenate(feats)
    # a model whose pair scores depend on the rest of their track's pairs (adm/regional.py)
    ll = (model.video_pair_scores(X, [len(c.pairs) for c in candidates]) if hasattr(model, "video_pair_scores")
          else model.score_samples(X))
    scored: Dict[int, List[Tuple[_Candidate, np.ndarray]]] = {}
    start = 0
    for c in candidates:
        scored.setdefault(c.row, []).append((c, ll[start:start + len(c.pairs)]))
        start += len(c.pairs)
    for pos, tracks in scored.items():
        _take_track(out[pos], tracks, keep_pairs, min_faces)
    return out


def _take_track(row: Dict, tracks: List[Tuple[_Candidate, np.ndarray]], keep_pairs: bool, min_faces: int) -> None:
    """The video's score from its scored tracks: the lowest of those with enough evidence, else
    the longest track's, with the status saying why it is no verdict."""
    bad = [(c, s) for c, s in tracks if not np.all(np.isfinite(s))]
    if bad:  # never an ok row with a NaN score
        c, s = bad[0]
        row.update(status=schema.ERROR, n_pairs=len(s),
                   error=f"{row['video_id']}: {int(np.sum(~np.isfinite(s)))} of {len(s)} pair scores of track {c.track} "
                         f"are not finite (NaN/inf in its embeddings or the model)")
        return
    judged = [(c, s) for c, s in tracks if c.enough and not c.still]
    if judged:
        c, s = min(judged, key=lambda cs: cs[1].mean())
        status, error = schema.VIDEO_OK, None
    else:
        c, s = max(tracks, key=lambda cs: (len(cs[0].frames), cs[1].mean()))
        if any(t.enough for t, _ in tracks):
            status, error = schema.STATIC, (f"{row['video_id']}: every face track with {min_faces} or more faces is "
                                            f"still (a photo or a looped still image): no verdict")
        else:
            status, error = schema.LOW_EVIDENCE, (f"{row['video_id']}: {len(c.frames)} usable faces in its longest "
                                                  f"track, a verdict needs {min_faces}")
    row.update(status=status, error=error, score=float(s.mean()), n_faces=len(c.frames), n_pairs=len(s),
               min_pair_score=float(s.min()), median_pair_score=float(np.median(s)), track=c.track,
               n_tracks=len(judged))
    if keep_pairs:
        row["pair_detail"] = {"frames": c.frames, "pairs": c.pairs, "scores": s}
