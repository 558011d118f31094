"""Noise Refinement Strategy (BBMG paper): down-weight pseudo-fakes that look like confident reals.

From epoch T_k: the k_s real features the model is surest are real are clustered into k centres
(k-means); a pseudo-fake whose minimum cosine distance d to a centre is below lambda gets the loss
weight ``d * (epoch / beta) + (1 - epoch / beta)``; every other sample keeps weight 1.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def confident_real_centres(features: np.ndarray, real_prob: np.ndarray, top_k: int = 500,
                           n_clusters: int = 5, seed: int = 0) -> np.ndarray:
    """k-means centres (n_clusters, D) of the ``top_k`` real features with the highest P(real)."""
    from sklearn.cluster import KMeans

    order = np.argsort(-np.asarray(real_prob))[: max(1, top_k)]
    chosen = np.asarray(features, dtype=np.float64)[order]
    k = min(n_clusters, len(chosen))
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit(chosen).cluster_centers_.astype(np.float32)


def min_cosine_distance(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    f = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)
    c = centres / (np.linalg.norm(centres, axis=1, keepdims=True) + 1e-12)
    return (1.0 - f @ c.T).min(axis=1)


def nrs_weights(fake_features: np.ndarray, centres: np.ndarray, epoch: int, lam: float = 0.5,
                beta: float = 200.0) -> np.ndarray:
    """Loss weights (N,) for pseudo-fake features."""
    d = min_cosine_distance(np.asarray(fake_features, np.float32), centres)
    t = epoch / beta
    return np.where(d < lam, d * t + (1.0 - t), 1.0).astype(np.float32)


def centres_due(epoch: int, start_epoch: int) -> bool:
    """Whether the centres are computed at the end of (0-based) ``epoch``. The paper's Algorithm 1
    counts epochs t from 1, weights the loss from t >= T_k and computes the centres after every
    t >= T_k - 1, so that the first weighted epoch is T_k itself."""
    return epoch + 1 >= start_epoch - 1


def weight_epoch(epoch: int) -> int:
    """The epoch of the weight formula for 0-based ``epoch``: the paper's t, counted from 1."""
    return epoch + 1


def most_confident(features: np.ndarray, real_prob: np.ndarray, top_k: int):
    """The ``top_k`` (features, P(real)) with the highest P(real): what a worker sends to be pooled
    (the global top k lies within the union of every worker's own top k)."""
    order = np.argsort(-np.asarray(real_prob), kind="stable")[: max(1, top_k)]
    return np.asarray(features)[order], np.asarray(real_prob)[order]


def shared_centres(features: np.ndarray, real_prob: np.ndarray, top_k: int, n_clusters: int, seed: int,
                   gather) -> Optional[np.ndarray]:
    """The centres of the ``top_k`` most confident real features of *every* worker: each worker's
    own top k is gathered (``gather``: a list of one (features, prob) per worker, e.g.
    ``torch.distributed.all_gather_object``), so every replica weights its fakes by the same
    centres, computed as one process would on the whole epoch."""
    pooled = [(f, p) for f, p in gather(most_confident(features, real_prob, top_k)) if len(f)]
    if not pooled:  # no worker saw a real face this epoch: no centres, every weight stays 1
        return None
    return confident_real_centres(np.concatenate([f for f, _ in pooled]), np.concatenate([p for _, p in pooled]),
                                  top_k, n_clusters, seed)
