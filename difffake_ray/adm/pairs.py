"""Pairs of frames of the same video, far enough apart for pose and expression to change."""

from __future__ import annotations

import hashlib

import numpy as np


def video_seed(video_id: str, seed: int = 0) -> int:
    """A stable per-video seed (Python's hash() is salted per process)."""
    h = hashlib.sha256(f"{seed}:{video_id}".encode("utf-8")).digest()
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
