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


# How a track's frames are paired: "random" (the paper: distinct random pairs, min_gap apart) or
# "reference" (the published code: a pool of 8 frames, every other frame paired with one of them)
PAIRINGS = ("random", "reference")
REFERENCE_POOL = 8


def reference_pairs(n_frames: int, rng: np.random.Generator, pool_size: int = REFERENCE_POOL) -> np.ndarray:
    """(n, 2) positions: ``pool_size`` random frames form a pool and every other frame is paired with
    a random pool frame (the reference code's pairing: 32 pairs from 40 frames). A track of at most
    ``pool_size`` frames keeps one frame out of its pool. Empty for fewer than two frames."""
    if n_frames < 2:
        return np.zeros((0, 2), dtype=np.int64)
    pool = np.sort(rng.choice(n_frames, size=min(pool_size, n_frames - 1), replace=False))
    others = np.setdiff1d(np.arange(n_frames), pool)
    return np.stack([others, pool[rng.integers(0, len(pool), size=len(others))]], axis=1).astype(np.int64)


def draw_pairs(frame_indices: np.ndarray, n_pairs: int, min_gap: int, rng: np.random.Generator,
               pairing: str = "random") -> np.ndarray:
    """The pairs of one track by ``pairing`` (PAIRINGS); ``n_pairs`` and ``min_gap`` are the random
    pairing's (the reference pairing's count follows the track's length, as in its code)."""
    if pairing == "reference":
        return reference_pairs(len(frame_indices), rng)
    if pairing != "random":
        raise ValueError(f"unknown pairing {pairing!r}: one of {', '.join(PAIRINGS)}")
    return sample_pairs(frame_indices, n_pairs, min_gap, rng)
