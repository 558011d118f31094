"""fit (driver): real videos of the training split -> pairs -> combination -> anomaly model."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema, storage
from ..config import Config, FitConfig
from ..runtime import FITTED_VIDEOS, read_run_record, write_run_record, write_seen_videos
from .combinations import combine_pairs
from .models import create_anomaly_model
from .persistence import save_model
from .selection import select_reg_covar


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


def training_pairs(table: pa.Table, combination: str, n_pairs: int, min_gap: int, seed: int, l2_normalize: bool,
                   max_pairs: Optional[int] = None, where: str = "no video",
                   pairing: str = "random") -> Tuple[np.ndarray, np.ndarray]:
    """Embedding rows of real videos -> (pair features (N, D), the video id of each row (N,)): the
    pairs of every moving face track, as score draws them, capped at ``max_pairs`` (seeded)."""
    from ..score import track_pairs, tracks_by_video

    videos = tracks_by_video(table)
    feats, owners = [], []
    for vid, tracks in sorted(videos.items()):
        for _, track in sorted(tracks.items()):  # every moving face track of a real video is real
            frames, emb = track.frames, track.embeddings
            if len(frames) < 2 or track.still:  # a still face is never scored: not fitted either
                continue
            if combination == "single":  # the single-frame baseline: every frame on its own
                feats.append(combine_pairs("single", emb, emb, l2_normalize))
            else:
                pairs = track_pairs(frames, n_pairs, min_gap, seed, pairing)
                feats.append(combine_pairs(combination, emb[pairs[:, 0]], emb[pairs[:, 1]], l2_normalize))
            owners.append(np.full(len(feats[-1]), vid, dtype=object))
    if not feats:
        raise ValueError(f"{where} has two usable faces to pair")
    X, who = np.concatenate(feats), np.concatenate(owners)
    if max_pairs is not None and len(X) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), size=max_pairs, replace=False))
        X, who = X[keep], who[keep]
    return X, who


def fit_anomaly_model(X: np.ndarray, owners: np.ndarray, f: FitConfig, backbone_meta: Dict[str, Any],
                      log=print) -> Tuple[Any, Dict[str, Any]]:
    """Pair features of real videos (and each pair's video) -> (fitted anomaly model, what its
    regularisation was and how it was chosen). ``backbone_meta``: the embedder's meta (how many
    face regions its vector holds, each stage's width in a region)."""
    n_regions = int(backbone_meta.get("regions", 1))
    region_stages = backbone_meta.get("region_stages")

    def make_model(reg_covar: float):
        return create_anomaly_model(f.anomaly_model, n_components=f.n_components, covariance_type=f.covariance_type,
                                    max_iter=f.max_iter, reg_covar=reg_covar, seed=f.seed, n_regions=n_regions,
                                    region_stages=region_stages, texture_stages=f.texture_stages,
                                    folds=f.reg_covar_folds, spread_by_pairs=f.spread_by_pairs)

    n, dim = X.shape
    small = {"pairs": int(n), "dim": int(dim), "pairs_per_dim": round(n / dim, 3),
             "threshold_pairs_per_dim": f.min_pairs_per_dim, "remedy": "none", "reg_covar": f.reg_covar}
    model = make_model(f.reg_covar)
    if getattr(model, "fits_groups", False):
        # the model chooses its own regularisation on held-out real videos (adm/regional.py)
        model.fit(X, owners)
        levels = model.level_widths(dim // n_regions)
        small.update(remedy="per-block reg_covar chosen on held-out real videos",
                     reg_covar=[s["reg_covar"] for s in model.selection_], regions=n_regions, level_widths=levels)
        log(f"fit: {n_regions} region(s) x {len(levels)} level(s) of {' + '.join(map(str, levels))} dimensions, "
            f"{n} pairs; reg_covar per block (relative) {', '.join(f'{s:g}' for s in small['reg_covar'])}")
        return model, small
    if f.anomaly_model == "gmm" and n < f.min_pairs_per_dim * dim:
        note = (f"fit: {n} pairs for {dim} dimensions ({n / dim:.2f} per dimension, under "
                f"{f.min_pairs_per_dim}): too few for a full covariance at reg_covar {f.reg_covar:g}")
        if f.small_data_remedy == "select_reg_covar":
            choice = select_reg_covar(X, owners, f.reg_covar_grid, f.reg_covar_folds, make_model)
            small.update(remedy="select_reg_covar", reg_covar=choice["chosen"], selection=choice)
            note += f"; reg_covar {choice['chosen']:g} chosen on held-out real videos ({choice['folds']}-fold)"
            if choice["largest_of_grid"]:
                note += ", the grid's largest: add larger values to fit.reg_covar_grid to see if they predict better"
        else:
            note += "; fitted as asked (fit.small_data_remedy=none)"
        log(note)
    return make_model(small["reg_covar"]).fit(X), small


def run_fit(emb_uri: str, out_uri: str, cfg: Config) -> Dict[str, Any]:
    started = time.time()
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
            "embedding_dim": int(X.shape[1]), "n_training_pairs": int(X.shape[0]), "n_fitted_videos": len(fitted),
            "small_data": small,
            "backbone_fingerprint": emb_record.get("backbone_fingerprint"), "embeddings": emb_uri,
            "score_direction": getattr(model, "score_meaning",
                                       "higher = more likely real (log-likelihood under real pairs)")}
    save_model(model, out_uri, meta)
    write_seen_videos(out_uri, FITTED_VIDEOS, fitted)
    write_run_record(out_uri, "fit", cfg, inputs={"embeddings": emb_uri},
                     counts={"pairs": int(X.shape[0]), "videos": len(fitted)}, started=started)
    print(f"fit: {f.anomaly_model} on {X.shape[0]} {f.combination} pairs of dim {X.shape[1]} from {len(fitted)} "
          f"real videos -> {out_uri} ({time.time() - started:.1f} s)", flush=True)
    return meta
