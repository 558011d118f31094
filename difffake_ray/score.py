"""Video scores: 30 random pairs of a video's usable faces (seeded by video_id), the anomaly
model's log-likelihood of each pair, the video score = their mean (higher = more real)."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from . import schema
from .adm.combinations import combine_pairs
from .adm.pairs import sample_pairs, video_seed


def group_video_embeddings(rows: List[Dict]) -> Dict[str, Dict]:
    """rows of one or more videos -> {video_id: {"manifest": {...}, "frames": [...], "emb": [...], ...}}"""
    videos: Dict[str, Dict] = {}
    for r in rows:
        v = videos.setdefault(r["video_id"], {"manifest": {c: r[c] for c in schema.MANIFEST_COLUMNS},
                                              "video_status": r["video_status"], "error": r.get("error"),
                                              "frames": [], "emb": []})
        if r.get("status") == schema.FRAME_OK and r.get("embedding") is not None:
            v["frames"].append(r["frame_index"])
            v["emb"].append(r["embedding"])
        elif r.get("status") == schema.EMBED_ERROR and not v.get("embed_error"):
            v["embed_error"] = r.get("error")
    return videos


def video_pairs(video_id: str, frames: List[int], n_pairs: int, min_gap: int, seed: int) -> np.ndarray:
    order = np.argsort(frames, kind="stable")
    rng = np.random.default_rng(video_seed(video_id, seed))
    pos = sample_pairs(np.asarray(frames)[order], n_pairs, min_gap, rng)
    return order[pos] if len(pos) else pos


def score_videos(rows: List[Dict], model, meta: Dict, n_pairs: int, min_gap: int, seed: int) -> List[Dict]:
    """Embedding rows of whole videos -> one score row per video (schema.SCORES_SCHEMA)."""
    videos = group_video_embeddings(rows)
    out, feats, owners = [], [], []
    for vid, v in videos.items():
        row = dict(v["manifest"], status=schema.VIDEO_OK, error=None, score=None, n_faces=len(v["frames"]),
                   n_pairs=0, min_pair_score=None, median_pair_score=None)
        if v["video_status"] != schema.VIDEO_OK:
            row.update(status=v["video_status"], error=v["error"])
        elif len(v["frames"]) < 2:
            row.update(status=schema.TOO_FEW_FACES,
                       error=v.get("embed_error") or f"{vid}: {len(v['frames'])} usable face(s), a pair needs 2")
        else:
            emb = np.asarray(v["emb"], np.float32)
            if emb.shape[1] != meta["embedding_dim"]:
                row.update(status=schema.ERROR, error=f"{vid}: embedding dim {emb.shape[1]} != model's "
                                                        f"{meta['embedding_dim']}")
            else:
                pairs = video_pairs(vid, v["frames"], n_pairs, min_gap, seed)
                feats.append(combine_pairs(meta["combination"], emb[pairs[:, 0]], emb[pairs[:, 1]],
                                           meta["l2_normalize"]))
                owners.append((len(out), len(pairs)))
        out.append(row)
    if feats:
        # one vectorised call over every pair of the batch
        ll = model.score_samples(np.concatenate(feats))
        start = 0
        for pos, n in owners:
            s = ll[start:start + n]
            start += n
            out[pos].update(score=float(s.mean()), n_pairs=n, min_pair_score=float(s.min()),
                            median_pair_score=float(np.median(s)))
    return out
