"""Video scores: 30 random pairs of a video's usable faces (seeded by video_id), the anomaly
model's score of each pair (a log-likelihood), the video score = their mean (higher = more real).

Embeddings arrive as Arrow tables of whole videos and stay numpy arrays: no row dicts, no
Python floats, whatever the batch size."""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .adm.combinations import combine_pairs
from .adm.pairs import sample_pairs, video_seed


def frames_by_video(table: pa.Table) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{video_id: (frame indices (n,), embeddings (n, D))} of the usable faces, in frame order."""
    ok = table.filter(pc.and_(pc.equal(table["status"], schema.FRAME_OK), pc.is_valid(table["embedding"])))
    if ok.num_rows == 0:
        return {}
    ids = ok["video_id"].to_numpy(zero_copy_only=False)
    frames = ok["frame_index"].to_numpy(zero_copy_only=False)
    emb = schema.embeddings_to_numpy(ok["embedding"])
    order = np.lexsort((frames, ids))
    ids, frames, emb = ids[order], frames[order], emb[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    return {str(ids[s]): (frames[s:e], emb[s:e]) for s, e in zip(starts, ends)}


def video_pairs(video_id: str, frames, n_pairs: int, min_gap: int, seed: int) -> np.ndarray:
    order = np.argsort(np.asarray(frames), kind="stable")
    rng = np.random.default_rng(video_seed(video_id, seed))
    pos = sample_pairs(np.asarray(frames)[order], n_pairs, min_gap, rng)
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


def score_videos(table: pa.Table, model, meta: Dict, n_pairs: int, min_gap: int, seed: int,
                 keep_pairs: bool = False) -> List[Dict]:
    """Embedding rows of whole videos -> one score row per video (schema.SCORES_SCHEMA). With
    ``keep_pairs``, a scored row also holds "pair_detail": its frame indices, its pairs (positions
    into them) and each pair's score: what a single-video report draws."""
    faces = frames_by_video(table)
    dim = table.schema.field("embedding").type.list_size
    out, feats, owners = [], [], []
    for v in _video_rows(table):
        vid = v["video_id"]
        frames, emb = faces.get(vid, (np.zeros(0, np.int32), np.zeros((0, dim), np.float32)))
        row = dict({c: v[c] for c in schema.MANIFEST_COLUMNS}, status=schema.VIDEO_OK, error=None, score=None,
                   n_faces=len(frames), n_pairs=0, min_pair_score=None, median_pair_score=None)
        if v["video_status"] != schema.VIDEO_OK:
            row.update(status=v["video_status"], error=v["error"])
        elif len(frames) < 2:
            row.update(status=schema.TOO_FEW_FACES,
                       error=v["embed_error"] or f"{vid}: {len(frames)} usable face(s), a pair needs 2")
        elif dim != meta["embedding_dim"]:
            row.update(status=schema.ERROR, error=f"{vid}: embedding dim {dim} != model's {meta['embedding_dim']}")
        else:
            pairs = video_pairs(vid, frames, n_pairs, min_gap, seed)
            feats.append(combine_pairs(meta["combination"], emb[pairs[:, 0]], emb[pairs[:, 1]], meta["l2_normalize"]))
            owners.append((len(out), pairs, frames))
        out.append(row)
    if feats:
        # one vectorised call over every pair of the batch
        X = np.concatenate(feats)
        # a model whose pair scores depend on the rest of their video's pairs (adm/regional.py)
        ll = (model.video_pair_scores(X, [len(p) for _, p, _ in owners]) if hasattr(model, "video_pair_scores")
              else model.score_samples(X))
        start = 0
        for pos, pairs, frames in owners:
            n = len(pairs)
            s = ll[start:start + n]
            start += n
            if not np.all(np.isfinite(s)):  # never an ok row with a NaN score
                out[pos].update(status=schema.ERROR, n_pairs=n,
                                error=f"{out[pos]['video_id']}: {int(np.sum(~np.isfinite(s)))} of {n} pair scores "
                                      f"are not finite (NaN/inf in its embeddings or the model)")
                continue
            out[pos].update(score=float(s.mean()), n_pairs=n, min_pair_score=float(s.min()),
                            median_pair_score=float(np.median(s)))
            if keep_pairs:
                out[pos]["pair_detail"] = {"frames": frames, "pairs": pairs, "scores": s}
    return out
