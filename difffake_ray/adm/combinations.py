"""Feature combinations of two embeddings A, B (registry): abs |A-B|, sub A-B, sub2 (A-B)^2 (the
paper's default, best cross-dataset), sub3 (A-B)^3 (best cross-manipulation); ``single`` is the
single-frame baseline (A alone, no pairing)."""

from __future__ import annotations

import numpy as np

from ..registry import Registry

COMBINATIONS = Registry("feature combination")


def create_combination(name: str):
    return COMBINATIONS.get(name)


@COMBINATIONS.register("abs")
def combine_abs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b)


@COMBINATIONS.register("sub")
def combine_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a - b


@COMBINATIONS.register("sub2")
def combine_sub2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return d * d


@COMBINATIONS.register("sub3")
def combine_sub3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return d * d * d


@COMBINATIONS.register("single")
def combine_single(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a


def combine_pairs(name: str, a: np.ndarray, b: np.ndarray, l2_normalize: bool = True) -> np.ndarray:
    """(N, D) x (N, D) -> (N, D) float64 pair features; rows L2-normalised when asked (reference)."""
    out = create_combination(name)(np.asarray(a, np.float64), np.asarray(b, np.float64))
    if l2_normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
