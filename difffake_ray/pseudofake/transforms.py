"""Source-target transforms T_st (albumentations, MIT 2.0.x line), seeded per sample.

Colour/quality changes go to the source or the target (p = 0.5 each way), so that the blended
region differs from its surroundings; the affine goes to the source and its mask only and creates
the blending boundary.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


class SourceTargetTransforms:
    def __init__(self, p: float = 0.5, translate: float = 0.03, scale: float = 0.05):
        import albumentations as A
        import cv2

        self.p = p
        self.colour = A.Compose([
            A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20), p=0.3),
            # HSV shift of +-0.3 as a fraction of each channel's range (hue 180, sat/val 255 in uint8)
            A.HueSaturationValue(hue_shift_limit=(-0.3 * 180 / 10, 0.3 * 180 / 10),
                                 sat_shift_limit=(-0.3 * 255 / 3, 0.3 * 255 / 3),
                                 val_shift_limit=(-0.3 * 255 / 3, 0.3 * 255 / 3), p=0.3),
            A.RandomBrightnessContrast(brightness_limit=(-0.3, 0.3), contrast_limit=(-0.3, 0.3), p=0.3),
            A.OneOf([
                A.Downscale(scale_range=(0.25, 0.5), interpolation_pair={"downscale": cv2.INTER_LINEAR,
                                                                         "upscale": cv2.INTER_LINEAR}, p=1),
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
        """-> (source, target, mask): uint8 images of image's shape, float32 mask."""
        source, target = image.copy(), image.copy()
        self.colour.set_random_seed(int(rng.integers(2**31)))
        if rng.random() < self.p:
            source = self.colour(image=source)["image"]
        else:
            target = self.colour(image=target)["image"]
        self.affine.set_random_seed(int(rng.integers(2**31)))
        moved = self.affine(image=source, mask=mask.astype(np.float32))
        return moved["image"], target, moved["mask"].astype(np.float32)
