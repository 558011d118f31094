"""The anomaly model's fit on arrays: pair features of real videos' face tracks, and the model
fitted to them with its regularisation chosen (no I/O: ``pipeline/fit.py`` reads and writes)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from ..config import FitConfig
from .combinations import combine_pairs
from .models import ANOMALY_MODELS
from .scoring import track_pairs, tracks_by_video
from .selection import select_reg_covar


def training_pairs(table: pa.Table, combination: str, n_pairs: int, min_gap: int, seed: int, l2_normalize: bool,
                   max_pairs: Optional[int] = None, where: str = "no video",
                   pairing: str = "random") -> Tuple[np.ndarray, np.ndarray]:
    """Embedding rows of real videos -> (pair features (N, D), the video id of each row (N,)): the
    pairs of every moving face track, as score draws them, capped at ``max_pairs`` (seeded)."""
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


# fit's config keys that are a model's constructor parameters, by the parameter's name
MODEL_KEYS = {"n_components": "n_components", "covariance_type": "covariance_type", "max_iter": "max_iter",
              "reg_covar": "reg_covar", "texture_stages": "texture_stages", "spread_by_pairs": "spread_by_pairs",
              "reg_covar_folds": "folds", "seed": "seed", "ocsvm_nu": "nu", "autoencoder_hidden": "hidden",
              "autoencoder_bottleneck": "bottleneck", "autoencoder_epochs": "epochs", "autoencoder_lr": "lr"}


def unused_settings(f: FitConfig) -> List[str]:
    """The fit settings set away from their defaults that the chosen model does not take (a
    regional_gmm chooses its own reg_covar per block; a gmm has no regions to split)."""
    taken, default = set(ANOMALY_MODELS.get(f.anomaly_model).param_names()), FitConfig()
    keys = [k for k, param in MODEL_KEYS.items() if param not in taken]
    if "reg_covar" not in taken:  # the small-data remedy is the gmm's
        keys += ["reg_covar_grid", "small_data_remedy", "min_pairs_per_dim"]
    return [k for k in keys if getattr(f, k) != getattr(default, k)]


def fit_anomaly_model(X: np.ndarray, owners: np.ndarray, f: FitConfig, backbone_meta: Dict[str, Any],
                      log=print) -> Tuple[Any, Dict[str, Any]]:
    """Pair features of real videos (and each pair's video) -> (fitted anomaly model, what its
    regularisation was and how it was chosen). ``backbone_meta``: the embedder's meta (how many
    face regions its vector holds, each stage's width in a region)."""
    n_regions = int(backbone_meta.get("regions", 1))
    taken = set(ANOMALY_MODELS.get(f.anomaly_model).param_names())
    for key in unused_settings(f):
        log(f"fit: {f.anomaly_model} does not use fit.{key} (set to {getattr(f, key)!r}); it is ignored")

    def make_model(reg_covar: float):
        settings = {param: getattr(f, key) for key, param in MODEL_KEYS.items()}
        settings.update(reg_covar=reg_covar, n_regions=n_regions, region_stages=backbone_meta.get("region_stages"))
        return ANOMALY_MODELS.create_from(f.anomaly_model, settings)

    n, dim = X.shape
    small = {"pairs": int(n), "dim": int(dim), "pairs_per_dim": round(n / dim, 3),
             "threshold_pairs_per_dim": f.min_pairs_per_dim, "remedy": "none", "reg_covar": f.reg_covar}
    if "reg_covar" not in taken:
        # the model regularises itself: regional_gmm chooses per block on held-out real videos
        model = make_model(f.reg_covar).fit(X, owners)
        if not hasattr(model, "level_widths"):
            return model, small
        levels = model.level_widths(dim // n_regions)
        small.update(remedy="per-block reg_covar chosen on held-out real videos",
                     reg_covar=[s["reg_covar"] for s in model.selection_], regions=n_regions, level_widths=levels)
        log(f"fit: {n_regions} region(s) x {len(levels)} level(s) of {' + '.join(map(str, levels))} dimensions, "
            f"{n} pairs; reg_covar per block (relative) {', '.join(f'{s:g}' for s in small['reg_covar'])}")
        return model, small
    if n < f.min_pairs_per_dim * dim:
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
    return make_model(small["reg_covar"]).fit(X, owners), small
