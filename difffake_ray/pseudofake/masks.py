"""Blending-mask generators (registry).

A generator draws the blending ``region(landmarks (68, 2), shape (H, W), rng)`` (a float32 {0, 1}
mask) and ``soften``s its boundary; ``generate`` does both. ``PseudoFakeMaker`` moves the region
with the source's affine in between, as the reference code does (affine, then elastic deformation
and blur). Masks stay float32 throughout (uint8 masks cost ~4.6 AUC points in the BBMG paper).

Two variants (``PseudofakeConfig.variant``):
- ``paper``: DiffFake's four landmark schemes with equal probability; SBI's boundary blur, which
  normalises before its erosion threshold, so the erosion always happens.
- ``reference``: the published DiffFake code: a face-X-ray style global hull with p=1/2, eyes,
  mouth and lower head with p=1/6 each, its own landmark sets; its boundary blur thresholds the
  blurred mask without normalising, so on masks whose blurred peak stays a rounding error under 1
  (about 15% of them) the erosion zeroes everything and the un-eroded mask is blurred instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..registry import Registry
from . import landmark_regions as R

MASK_GENERATORS = Registry("mask generator")
VARIANTS = ("paper", "reference")


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


@dataclass(frozen=True)
class BoundaryBlur:
    """SBI's random boundary blur: work size, first kernel (odd 5..25), second kernel (odd 5..25)
    and its sigma (5..45)."""

    height: int
    width: int
    kernel1: int
    kernel2: int
    sigma2: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "BoundaryBlur":
        odd = lambda: int(rng.integers(2, 13)) * 2 + 1  # noqa: E731 - 5, 7, ..., 25
        return cls(height=int(rng.integers(192, 257)), width=int(rng.integers(192, 257)), kernel1=odd(),
                   kernel2=odd(), sigma2=int(rng.integers(5, 46)))


def erode_soft_edge(blurred: np.ndarray, normalise: bool) -> Optional[np.ndarray]:
    """Keep only where the blurred mask is 1 (the core, away from the edge). ``normalise`` first, as
    SBI does; without it (the reference) a peak of 0.99999994 leaves nothing: None."""
    core = blurred / blurred.max() if normalise and blurred.max() > 0 else blurred.copy()
    core[core < 1.0] = 0.0
    return core if core.max() > 0 else None


def smooth_boundary(mask: np.ndarray, rng: np.random.Generator, normalise_before_erosion: bool = True) -> np.ndarray:
    """Resize to a random 192-256 work size, blur, erode the soft edge, blur again, renormalise,
    resize back. float32 in [0, 1] of ``mask``'s shape."""
    import cv2

    h, w = mask.shape
    p = BoundaryBlur.draw(rng)
    work = cv2.resize(mask, (p.width, p.height))
    blurred = cv2.GaussianBlur(work, (p.kernel1, p.kernel1), 0)
    core = erode_soft_edge(blurred, normalise_before_erosion)
    blurred = cv2.GaussianBlur(work if core is None else core, (p.kernel2, p.kernel2), p.sigma2)
    peak = blurred.max()
    if peak > 0:
        blurred = blurred / peak
    return cv2.resize(blurred, (w, h)).astype(np.float32)


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


class _SoftenedRegion:
    """Elastic deformation + SBI boundary blur of a landmark region (DiffFake, SBI)."""

    def __init__(self, alpha: float = 50.0, sigma: float = 7.0, variant: str = "paper"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown pseudo-fake variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.alpha, self.sigma, self.variant = alpha, sigma, variant

    def soften(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mask = elastic_deform(mask, rng, self.alpha, self.sigma * mask.shape[0] / 256.0)
        return smooth_boundary(mask, rng, normalise_before_erosion=self.variant == "paper")

    def generate(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return self.soften(self.region(landmarks, shape, rng), rng)


def face_xray_hull(lm: np.ndarray, shape: Tuple[int, int], kind: str) -> np.ndarray:
    """One of the reference's four global hull types (see landmark_regions)."""
    if kind == "dfl_full":
        return hull_mask(lm[R.DFL_FULL], shape)
    if kind == "extended":  # brows pushed up by half their height above the eyes: the forehead
        pts = lm.copy()
        eyes_y = lm[R.RIGHT_EYE + R.LEFT_EYE, 1].mean()
        brows = R.RIGHT_BROW + R.LEFT_BROW
        pts[brows, 1] -= 0.5 * np.maximum(eyes_y - pts[brows, 1], 0)
        return hull_mask(pts[R.DFL_FULL], shape)
    if kind == "components":
        out = np.zeros(shape, np.float32)
        for part in R.FACE_COMPONENTS:
            out = np.maximum(out, hull_mask(lm[part], shape))
        return out
    if kind == "facehull":
        return hull_mask(lm, shape)
    raise ValueError(f"unknown face hull {kind!r}")


FACE_XRAY_HULLS = ("dfl_full", "extended", "components", "facehull")
# reference scheme -> probability, landmark set (None: a global face-X-ray hull)
REFERENCE_SCHEMES = {"global": (0.5, None), "eyes": (1 / 6, R.REFERENCE_EYES), "mouth": (1 / 6, R.REFERENCE_MOUTH),
                     "lower_head": (1 / 6, R.REFERENCE_LOWER_HEAD)}


@MASK_GENERATORS.register("difffake")
class DiffFakeMask(_SoftenedRegion):
    """Convex hull of a landmark scheme, elastically deformed and smoothed. ``paper``: one of the
    four schemes of the paper with equal probability; ``reference``: the published code's choice."""

    def __init__(self, schemes: Sequence[str] = (), alpha: float = 50.0, sigma: float = 7.0, scheme: str = "",
                 variant: str = "paper"):
        super().__init__(alpha, sigma, variant)
        table = R.DIFFFAKE_SCHEMES if variant == "paper" else REFERENCE_SCHEMES
        self.schemes = [scheme] if scheme else list(schemes or table)
        unknown = [s for s in self.schemes if s not in table]
        if unknown:
            raise ValueError(f"unknown {variant} mask scheme(s) {unknown}; known: {', '.join(table)}")
        if variant == "reference":
            p = np.array([REFERENCE_SCHEMES[s][0] for s in self.schemes])
            self.probabilities = p / p.sum()
        else:
            self.probabilities = np.full(len(self.schemes), 1.0 / len(self.schemes))

    def choose(self, rng: np.random.Generator) -> str:
        return self.schemes[int(rng.choice(len(self.schemes), p=self.probabilities))]

    def region(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        lm = _check(landmarks)
        scheme = self.choose(rng)
        if self.variant == "paper":
            return hull_mask(lm[R.DIFFFAKE_SCHEMES[scheme]], shape)
        points = REFERENCE_SCHEMES[scheme][1]
        if points is None:
            return face_xray_hull(lm, shape, FACE_XRAY_HULLS[int(rng.integers(len(FACE_XRAY_HULLS)))])
        return hull_mask(lm[points], shape)


@MASK_GENERATORS.register("sbi")
class SbiMask(_SoftenedRegion):
    """SBI's global mask: hull of all 68 landmarks, deformed and blurred."""

    def region(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return hull_mask(_check(landmarks), shape)


@MASK_GENERATORS.register("bbmg")
class BbmgMask:
    """BBMG: M_global = hull minus a random subset of {eyes, nose, mouth}; M_local = that subset;
    both boundaries Gaussian-blurred; M = max(M_global, M_local)."""

    def __init__(self, variant: str = "paper", **_: object):
        self.variant = variant

    def region(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        # the two parts ride the affine together as channels of one mask, split again in soften
        lm = _check(landmarks)
        names = list(R.BBMG_PARTS)
        chosen = [n for n in names if rng.random() < 0.5] or [names[int(rng.integers(len(names)))]]
        local = np.zeros(shape, np.float32)
        for n in chosen:
            local = np.maximum(local, hull_mask(lm[R.BBMG_PARTS[n]], shape))
        return np.stack([np.clip(hull_mask(lm, shape) - local, 0, 1), local], axis=-1)

    def soften(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        global_, local = mask[..., 0], mask[..., 1]
        return np.maximum(gaussian_boundary(np.ascontiguousarray(global_), rng),
                          gaussian_boundary(np.ascontiguousarray(local), rng)).astype(np.float32)

    def generate(self, landmarks: np.ndarray, shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return self.soften(self.region(landmarks, shape, rng), rng)
