"""Source-target transforms T_st (albumentations, MIT 2.0.x line), seeded per sample.

Colour/quality changes go to the source or the target (p = 0.5 each way), so that the blended
region differs from its surroundings; the affine goes to the source and its mask only and creates
the blending boundary. Values are SBI's, which the reference code uses, in albumentations' own
units: RGB shift +-20 (p 0.3); hue, saturation and value +-0.3 (p 1); brightness and contrast
(p 1) +-0.3 as the paper's text says, or +-0.1 as the reference code has it; then either a
downscale by exactly 2 or 4 (nearest down, linear up) or a sharpen. Affine: translate x +-3%,
y +-1.5%, scale [0.95, 1/0.95].
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

BRIGHTNESS_CONTRAST = {"paper": 0.3, "reference": 0.1}


class SourceTargetTransforms:
    def __init__(self, p: float = 0.5, translate: float = 0.03, scale: float = 0.05,
                 brightness_contrast: float = 0.3):
        import albumentations as A
        import cv2

        def downscale(factor: int):
            return A.Downscale(scale_range=(1 / factor, 1 / factor), p=1,
                               interpolation_pair={"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR})

        self.p = p
        bc = brightness_contrast
        self.colour = A.Compose([
            A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20), p=0.3),
            A.HueSaturationValue(hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3),
                                 val_shift_limit=(-0.3, 0.3), p=1),
            A.RandomBrightnessContrast(brightness_limit=(-bc, bc), contrast_limit=(-bc, bc), p=1),
            A.OneOf([
                A.OneOf([downscale(2), downscale(4)], p=1),
                A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1),
            ], p=1),
        ])
        self.affine = A.Compose([
            A.Affine(translate_percent={"x": (-translate, translate), "y": (-translate / 2, translate / 2)},
                     scale=(1 - scale, 1 / (1 - scale)), border_mode=cv2.BORDER_REFLECT,
                     mask_interpolation=cv2.INTER_LINEAR, p=1),
        ])

    def __call__(self, image: np.ndarray, mask: np.ndarray,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (source, target, mask): uint8 images of image's shape; the mask moved with the source."""
        source, target = image.copy(), image.copy()
        self.colour.set_random_seed(int(rng.integers(2**31)))
        if rng.random() < self.p:
            source = self.colour(image=source)["image"]
        else:
            target = self.colour(image=target)["image"]
        self.affine.set_random_seed(int(rng.integers(2**31)))
        moved = self.affine(image=source, mask=mask.astype(np.float32))
        return moved["image"], target, moved["mask"].astype(np.float32)
