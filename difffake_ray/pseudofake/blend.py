"""Self-blended pseudo-deepfake: I_B = I_s * M + I_t * (1 - M), with SBI's dynamic blend ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .masks import create_mask_generator
from .transforms import BRIGHTNESS_CONTRAST, SourceTargetTransforms

DEFAULT_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 blend of two HxWx3 images through an HxW mask in [0, 1]; returns float32."""
    m = mask.astype(np.float32)[..., None]
    return source.astype(np.float32) * m + target.astype(np.float32) * (1.0 - m)


@dataclass
class PseudoFake:
    image: np.ndarray  # uint8 HxWx3
    mask: np.ndarray  # float32 HxW, the mask actually used (ratio applied)
    generator: str


class PseudoFakeMaker:
    """Real face + its landmarks -> a pseudo-fake of it. Reproducible for a given rng."""

    def __init__(self, generators: Sequence[str] = ("difffake",),
                 blend_ratios: Sequence[float] = DEFAULT_BLEND_RATIOS, transform_p: float = 0.5,
                 elastic_alpha: float = 50.0, elastic_sigma: float = 7.0, variant: str = "paper"):
        self.names = list(generators)
        kwargs = {"difffake": dict(alpha=elastic_alpha, sigma=elastic_sigma),
                  "sbi": dict(alpha=elastic_alpha, sigma=elastic_sigma)}
        self.generators = {n: create_mask_generator(n, variant=variant, **kwargs.get(n, {})) for n in self.names}
        self.blend_ratios = list(blend_ratios)
        self.transforms = SourceTargetTransforms(p=transform_p, brightness_contrast=BRIGHTNESS_CONTRAST[variant])

    @classmethod
    def from_config(cls, cfg, generators: Optional[Sequence[str]] = None) -> "PseudoFakeMaker":
        return cls(generators or cfg.mask_generators, cfg.blend_ratios, cfg.transform_p, cfg.elastic_alpha,
                   cfg.elastic_sigma, cfg.variant)

    def make(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
             generator: Optional[str] = None) -> PseudoFake:
        """The reference's order: region, colour on source or target, affine on source and region,
        then elastic deformation and boundary blur of the moved region, blend ratio, blend."""
        name = generator or self.names[int(rng.integers(len(self.names)))]
        h, w = image.shape[:2]
        gen = self.generators[name]
        region = gen.region(landmarks, (h, w), rng)
        source, target, region = self.transforms(image, region, rng)
        mask = gen.soften(region, rng)
        mask = mask * float(self.blend_ratios[int(rng.integers(len(self.blend_ratios)))])
        out = np.clip(blend(source, target, mask), 0, 255).astype(np.uint8)
        return PseudoFake(out, mask.astype(np.float32), name)
