"""Pairs of frames of the same video, far enough apart for pose and expression to change."""

from __future__ import annotations

import hashlib

import numpy as np


def pair_seed(frame_indices: np.ndarray, seed: int = 0) -> int:
    """A pair draw's seed from the frame numbers of the faces it draws from and the config's seed:
    stable across processes (unlike hash()) and free of any name, so renaming a file or reading it
    in another path never changes which pairs are scored."""
    frames = np.ascontiguousarray(np.asarray(frame_indices, dtype=np.int64))
    h = hashlib.sha256(int(seed).to_bytes(8, "little", signed=True) + frames.tobytes()).digest()
    return int.from_bytes(h[:8], "little")


def sample_pairs(frame_indices: np.ndarray, n_pairs: int, min_gap: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) positions into ``frame_indices`` of distinct random pairs whose frame numbers differ by
    at least ``min_gap`` (relaxed to the largest feasible gap for short videos). Fewer than
    ``n_pairs`` when the video has fewer distinct pairs. Empty for fewer than two frames."""
    frames = np.asarray(frame_indices)
    n = len(frames)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = np.triu_indices(n, k=1)
    gaps = np.abs(frames[j] - frames[i])
    gap = min(min_gap, int(gaps.max()))
    ok = gaps >= gap
    i, j = i[ok], j[ok]
    pick = rng.permutation(len(i))[: min(n_pairs, len(i))]
    return np.stack([i[pick], j[pick]], axis=1)
