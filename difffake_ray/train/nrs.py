"""Noise Refinement Strategy (BBMG paper): down-weight pseudo-fakes that look like confident reals.

From epoch T_k: the k_s real features the model is surest are real are clustered into k centres
(k-means); a pseudo-fake whose minimum cosine distance d to a centre is below lambda gets the loss
weight ``d * (epoch / beta) + (1 - epoch / beta)``; every other sample keeps weight 1.
"""

from __future__ import annotations

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
