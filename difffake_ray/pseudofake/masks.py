"""Blending-mask generators (registry). ``generate(landmarks (68, 2), shape (H, W), rng) ->
float32 mask in [0, 1]`` of that shape.

Masks stay float32 through deformation and blurring (uint8 masks cost ~4.6 AUC points in the
BBMG paper).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..registry import Registry
from . import landmark_regions as R

MASK_GENERATORS = Registry("mask generator")


def create_mask_generator(name: str, **kwargs):
    return MASK_GENERATORS.create(name, **kwargs)


def hull_mask(points: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Filled convex hull of (N, 2) points as a float32 {0, 1} mask."""
    import cv2

    mask = np.zeros(shape, np.float32)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    return mask


def elastic_deform(mask: np.ndarray, rng: np.random.Generator, alpha: float = 50.0,
                   sigma: float = 7.0) -> np.ndarray:
    """Random smooth displacement field (Simard et al.), float32 in, float32 out."""
    import cv2

    h, w = mask.shape
    k = int(4 * sigma) | 1
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (k, k), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (k, k), sigma) * alpha
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def smooth_boundary(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI-style boundary blur: blur, erode the soft edge, blur again, renormalise to [0, 1]."""
    import cv2

    k1 = int(rng.integers(2, 12)) * 2 + 1  # odd 5..25
    blurred = cv2.GaussianBlur(mask, (k1, k1), 0)
    blurred[blurred < 1.0] = 0.0
    sigma = float(rng.uniform(5, 45)) * mask.shape[0] / 256.0
    k2 = int(4 * sigma) | 1
    blurred = cv2.GaussianBlur(blurred if blurred.max() > 0 else mask, (k2, k2), sigma)
    peak = blurred.max()
    return (blurred / peak).astype(np.float32) if peak > 0 else blurred.astype(np.float32)


def gaussian_boundary(mask: np.ndarray, rng: np.random.Generator, lo: int = 5, hi: int = 31) -> np.ndarray:
    import cv2

    k = int(rng.integers(lo // 2, hi // 2 + 1)) * 2 + 1
    out = cv2.GaussianBlur(mask, (k, k), 0)
    peak = out.max()
    return (out / peak).astype(np.float32) if peak > 0 else out


def _check(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks, got {lm.shape}")
    return lm


@MASK_GENERATORS.register("difffake")
class DiffFakeMask:
    """Convex hull of one of four landmark schemes, elastically deformed and smoothed."""

    def __init__(self, schemes: Sequence[str] = tuple(R.DIFFFAKE_SCHEMES), alpha: float = 50.0,
                 sigma: float = 7.0, scheme: str = ""):
        self.schemes = [scheme] if scheme else list(schemes)
        self.alpha, self.sigma = alpha, sigma

    def generate(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        lm = _check(landmarks)
        scheme = self.schemes[int(rng.integers(len(self.schemes)))]
        mask = hull_mask(lm[R.DIFFFAKE_SCHEMES[scheme]], shape)
        mask = elastic_deform(mask, rng, self.alpha, self.sigma * shape[0] / 256.0)
        return smooth_boundary(mask, rng)


@MASK_GENERATORS.register("sbi")
class SbiMask:
    """SBI's global mask: hull of all 68 landmarks, deformed and blurred."""

    def __init__(self, alpha: float = 50.0, sigma: float = 7.0):
        self.alpha, self.sigma = alpha, sigma

    def generate(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        mask = hull_mask(_check(landmarks), shape)
        mask = elastic_deform(mask, rng, self.alpha, self.sigma * shape[0] / 256.0)
        return smooth_boundary(mask, rng)


@MASK_GENERATORS.register("bbmg")
class BbmgMask:
    """BBMG: M_global = hull minus a random subset of {eyes, nose, mouth}; M_local = that subset;
    both boundaries Gaussian-blurred; M = max(M_global, M_local)."""

    def generate(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        lm = _check(landmarks)
        names = list(R.BBMG_PARTS)
        chosen = [n for n in names if rng.random() < 0.5] or [names[int(rng.integers(len(names)))]]
        local = np.zeros(shape, np.float32)
        for n in chosen:
            local = np.maximum(local, hull_mask(lm[R.BBMG_PARTS[n]], shape))
        global_ = np.clip(hull_mask(lm, shape) - local, 0, 1)
        return np.maximum(gaussian_boundary(global_, rng), gaussian_boundary(local, rng)).astype(np.float32)
