"""fit (driver): real videos of the training split -> pairs -> combination -> anomaly model."""

from __future__ import annotations

import time
from typing import Any, Dict

import numpy as np
import pyarrow.compute as pc

from .. import schema, storage
from ..config import Config
from ..runtime import read_run_record, write_run_record
from .combinations import combine_pairs
from .models import create_anomaly_model
from .persistence import save_model


def collect_training_pairs(emb_uri: str, combination: str, n_pairs: int, min_gap: int, seed: int,
                           l2_normalize: bool, split: str = "train") -> np.ndarray:
    from ..score import group_video_embeddings, video_pairs

    cols = schema.MANIFEST_COLUMNS + ["video_status", "status", "error", "frame_index", "embedding"]
    t = storage.read_parquet_dir(emb_uri, columns=cols)
    t = t.filter(pc.and_(pc.and_(pc.equal(t["label"], "real"), pc.equal(t["split"], split)),
                         pc.equal(t["status"], schema.FRAME_OK)))
    feats = []
    for vid, v in sorted(group_video_embeddings(t.to_pylist()).items()):
        if len(v["frames"]) < 2:
            continue
        emb = np.asarray(v["emb"], np.float32)
        if combination == "single":  # the single-frame baseline: every frame on its own
            feats.append(combine_pairs("single", emb, emb, l2_normalize))
            continue
        pairs = video_pairs(vid, v["frames"], n_pairs, min_gap, seed)
        feats.append(combine_pairs(combination, emb[pairs[:, 0]], emb[pairs[:, 1]], l2_normalize))
    if not feats:
        raise ValueError(f"{emb_uri}: no real video of split {split!r} has two usable faces to pair")
    return np.concatenate(feats)


def run_fit(emb_uri: str, out_uri: str, cfg: Config) -> Dict[str, Any]:
    started = time.time()
    f = cfg.fit
    X = collect_training_pairs(emb_uri, f.combination, f.pairs_per_video, f.min_frame_gap, f.seed,
                               f.l2_normalize, f.split)
    model = create_anomaly_model(f.anomaly_model, n_components=f.n_components, covariance_type=f.covariance_type,
                                 max_iter=f.max_iter, reg_covar=f.reg_covar, seed=f.seed).fit(X)
    try:
        emb_record = read_run_record(emb_uri)
    except FileNotFoundError:
        emb_record = {}
    meta = {"anomaly_model": f.anomaly_model, "combination": f.combination, "l2_normalize": f.l2_normalize,
            "embedding_dim": int(X.shape[1]), "n_training_pairs": int(X.shape[0]),
            "backbone_fingerprint": emb_record.get("backbone_fingerprint"), "embeddings": emb_uri,
            "score_direction": "higher = more likely real (log-likelihood under real pairs)"}
    save_model(model, out_uri, meta)
    write_run_record(out_uri, "fit", cfg, inputs={"embeddings": emb_uri}, counts={"pairs": int(X.shape[0])},
                     started=started)
    print(f"fit: {f.anomaly_model} on {X.shape[0]} {f.combination} pairs of dim {X.shape[1]} -> {out_uri}",
          flush=True)
    return meta
