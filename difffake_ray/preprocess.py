"""Model input: what the backbone's weights were trained with (size, mean/std, interpolation), read
from timm's pretrained config, and how much of the face crop it sees (``crop_pct``), carried in
every exported model, so that train, embed, preview and detect crop, resize and normalise a face
the same way."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

# timm's interpolation names -> OpenCV's
_CV2_INTERPOLATION = {"bicubic": "INTER_CUBIC", "bilinear": "INTER_LINEAR", "nearest": "INTER_NEAREST",
                      "area": "INTER_AREA", "lanczos": "INTER_LANCZOS4"}


@dataclass(frozen=True)
class InputSpec:
    size: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    interpolation: str
    # The centred fraction of the stored face crop's side the model sees (timm's name). 1.0: the
    # whole 1.3x crop, as the paper. Less keeps the background, which moves with the head and
    # changes the features of untrained ImageNet backbones more than a manipulation does, out.
    crop_pct: float = 1.0

    def __post_init__(self):
        if not 0.3 <= self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct {self.crop_pct} is outside [0.3, 1.0]")
        if self.size < 16:
            raise ValueError(f"input size {self.size} is too small for a CNN backbone (>= 16)")
        if self.interpolation not in _CV2_INTERPOLATION:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; known: {', '.join(_CV2_INTERPOLATION)}")

    @classmethod
    def from_model(cls, model, size: Optional[int] = None, crop_pct: float = 1.0) -> "InputSpec":
        """timm's ``resolve_model_data_config``; ``size`` overrides the square input size."""
        import timm.data

        cfg = timm.data.resolve_model_data_config(model)
        return cls(size=int(size or cfg["input_size"][-1]), mean=tuple(float(v) for v in cfg["mean"]),
                   std=tuple(float(v) for v in cfg["std"]), interpolation=str(cfg["interpolation"]),
                   crop_pct=float(crop_pct))

    @classmethod
    def for_arch(cls, arch: str, size: Optional[int] = None, crop_pct: float = 1.0) -> "InputSpec":
        """The spec of timm's ``arch`` without loading any weights (preview, checks)."""
        import timm

        return cls.from_model(timm.create_model(arch, pretrained=False, num_classes=0), size, crop_pct)

    @classmethod
    def from_meta(cls, meta: Dict[str, Any]) -> "InputSpec":
        d = meta["input"]
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]), interpolation=d["interpolation"],
                   crop_pct=float(d.get("crop_pct", 1.0)))  # models written before crop_pct saw the whole crop

    def to_meta(self) -> Dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def resize(self, image: np.ndarray, landmarks: Optional[np.ndarray] = None):
        """HxWx3 uint8 -> its centred ``crop_pct`` resized to size x size x 3 uint8 (and landmarks
        (68, 2) moved and scaled with it, if given)."""
        import cv2

        h, w = image.shape[:2]
        if self.crop_pct < 1.0:
            ch, cw = max(1, int(round(h * self.crop_pct))), max(1, int(round(w * self.crop_pct)))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            image, h, w = image[y0:y0 + ch, x0:x0 + cw], ch, cw
            if landmarks is not None:
                landmarks = landmarks - np.array([x0, y0], np.float32)
        if (h, w) != (self.size, self.size):
            image = cv2.resize(image, (self.size, self.size), interpolation=getattr(cv2, _CV2_INTERPOLATION[self.interpolation]))
            if landmarks is not None:
                landmarks = landmarks * np.array([self.size / w, self.size / h], np.float32)
        return image if landmarks is None else (image, landmarks)

    def normalise(self, images: np.ndarray) -> np.ndarray:
        """(..., H, W, 3) uint8 -> (..., 3, H, W) float32, (x / 255 - mean) / std."""
        x = images.astype(np.float32) * (1.0 / 255.0)
        x -= np.asarray(self.mean, np.float32)
        x /= np.asarray(self.std, np.float32)
        return np.moveaxis(x, -1, -3)

    def normalise_torch(self, images):
        """(N, H, W, 3) uint8 torch tensor (any device) -> (N, 3, H, W) float32, normalised there."""
        import torch

        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1) * 255.0
        return (images.permute(0, 3, 1, 2).float() - mean) / std
