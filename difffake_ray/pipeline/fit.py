"""fit: the real videos of the training split's embeddings -> pairs -> combination -> anomaly
model, saved with its meta and the videos it saw (the maths in ``adm/fit.py``)."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema, storage
from ..adm.fit import fit_anomaly_model, training_pairs
from ..adm.persistence import save_model
from ..config import Config
from ..runtime import FITTED_VIDEOS, read_run_record, write_run_record, write_seen_videos
from .claim import hold


def training_videos(emb_uri: str, split: str) -> List[str]:
    """The real videos of ``split`` with usable faces, sorted. One projected scan with the filter
    pushed down: the driver holds ids only."""
    ids: set = set()
    for batch in storage.scan_batches(emb_uri, ["video_id"], filter=_real_faces(split)):
        ids.update(pc.unique(batch.column(0)).to_pylist())
    return sorted(ids)


def _real_faces(split: str):
    import pyarrow.dataset as pads

    return ((pads.field("label") == "real") & (pads.field("split") == split)
            & (pads.field("status") == schema.FRAME_OK))


def embedding_width(emb_uri: str, pair_width: int) -> int:
    """The width of the embeddings in ``emb_uri`` (its schema's fixed-size list); a table written
    otherwise: ``pair_width`` (every combination is element-wise)."""
    size = getattr(storage.parquet_dataset(emb_uri).schema.field("embedding").type, "list_size", -1)
    return int(size) if size and size > 0 else int(pair_width)


def collect_training_pairs(emb_uri: str, combination: str, n_pairs: int, min_gap: int, seed: int,
                           l2_normalize: bool, split: str = "train",
                           max_pairs: Optional[int] = None, pairing: str = "random") -> Tuple[np.ndarray, np.ndarray]:
    """-> (pair features (N, D), the video id of each row (N,)).

    Reads only what the fit uses: the real videos of ``split`` (label, split and status filters
    pushed down to the Parquet reader), three columns, numpy all the way. With ``max_pairs``, a
    seeded sample of videos is read, enough for that many pairs, and the pairs are capped there:
    the driver's memory is set by ``max_pairs``, not by the corpus."""
    import pyarrow.dataset as pads

    filt = _real_faces(split)
    if max_pairs is not None and combination != "single":  # single frames are capped below, as pairs are
        videos = training_videos(emb_uri, split)
        max_videos = max(1, -(-max_pairs // n_pairs))
        if len(videos) > max_videos:  # read a seeded sample of videos, enough for max_pairs pairs
            pick = np.random.default_rng(seed).choice(len(videos), size=max_videos, replace=False)
            filt = filt & pads.field("video_id").isin(sorted(videos[i] for i in pick))
    present = storage.parquet_dataset(emb_uri).schema.names  # files written before tracks have neither
    columns = ["video_id", "status", "frame_index", "embedding"] + [c for c in ("track", "motion") if c in present]
    batches = list(storage.scan_batches(emb_uri, columns, filter=filt))
    if not batches:
        raise ValueError(f"{emb_uri}: no real video of split {split!r} has two usable faces to pair")
    return training_pairs(pa.Table.from_batches(batches), combination, n_pairs, min_gap, seed, l2_normalize,
                          max_pairs, where=f"{emb_uri}: no real video of split {split!r}", pairing=pairing)


def run_fit(emb_uri: str, out_uri: str, cfg: Config) -> Dict[str, Any]:
    started = time.time()
    emb_uri, out_uri = storage.absolute(emb_uri), storage.absolute(out_uri)
    with hold(out_uri, "fit", inputs={"embeddings": emb_uri}):
        return _fit(emb_uri, out_uri, cfg, started)


def _fit(emb_uri: str, out_uri: str, cfg: Config, started: float) -> Dict[str, Any]:
    f = cfg.fit
    X, owners = collect_training_pairs(emb_uri, f.combination, f.pairs_per_video, f.min_frame_gap, f.seed,
                                       f.l2_normalize, f.split, f.max_pairs or None, f.pairing)

    try:
        emb_record = read_run_record(emb_uri)
    except FileNotFoundError:
        emb_record = {}
    model, small = fit_anomaly_model(X, owners, f, emb_record.get("backbone_meta") or {},
                                     log=lambda line: print(line, flush=True))
    fitted = sorted(set(owners.tolist()))
    meta = {"anomaly_model": f.anomaly_model, "combination": f.combination, "l2_normalize": f.l2_normalize,
            "embedding_dim": embedding_width(emb_uri, X.shape[1]), "pair_feature_dim": int(X.shape[1]),
            "n_training_pairs": int(X.shape[0]), "n_fitted_videos": len(fitted),
            "small_data": small,
            "backbone_fingerprint": emb_record.get("backbone_fingerprint"), "embeddings": emb_uri,
            "score_direction": model.score_meaning}
    save_model(model, out_uri, meta)
    write_seen_videos(out_uri, FITTED_VIDEOS, fitted)
    write_run_record(out_uri, "fit", cfg, inputs={"embeddings": emb_uri},
                     counts={"pairs": int(X.shape[0]), "videos": len(fitted)}, started=started)
    print(f"fit: {f.anomaly_model} on {X.shape[0]} {f.combination} pairs of dim {X.shape[1]} from {len(fitted)} "
          f"real videos -> {out_uri} ({time.time() - started:.1f} s)", flush=True)
    return meta
