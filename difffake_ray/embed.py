"""Embedding of stored crops: decode, optional robustness perturbation, batched forward pass."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from . import schema
from .faces.codec import decode_image
from .preprocess import InputSpec

PERTURBATIONS = ("none", "resize128", "resize256", "blur3", "blur5", "jpeg50", "jpeg100")


def perturb(image: np.ndarray, name: str) -> np.ndarray:
    """The robustness protocol applied to a crop before embedding."""
    import cv2

    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    if name == "none":
        return image
    h, w = image.shape[:2]
    if name.startswith("resize"):
        s = int(name[6:])
        return cv2.resize(cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA), (w, h))
    if name.startswith("blur"):
        k = int(name[4:])
        return cv2.GaussianBlur(image, (k, k), 0)
    if name.startswith("jpeg"):
        q = int(name[4:])
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raise AssertionError(name)  # every name in PERTURBATIONS is handled above


class CropEmbedder:
    """Loaded once per worker; ``embed_rows(face rows) -> embedding rows`` (schema.embeddings_schema)."""

    def __init__(self, backbone_uri: str, batch_size: int = 64, amp: bool = True, channels_last: bool = True,
                 perturbation: str = "none", device: Optional[str] = None):
        import torch

        from .backbone import load_embedder

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.meta = load_embedder(backbone_uri, str(self.device))
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last, self.batch_size = channels_last, batch_size
        self.amp = amp and self.device.type == "cuda"
        self.perturbation = perturbation
        self.dim = int(self.meta["feature_dim"])
        self.spec = InputSpec.from_meta(self.meta)  # as in training: the model's size, mean/std, interpolation
        perturb(np.zeros((8, 8, 3), np.uint8), perturbation)  # an unknown name fails here, not per row

    def _prepare(self, crop: bytes) -> np.ndarray:
        return self.spec.resize(perturb(decode_image(crop), self.perturbation))

    def forward(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) float32."""
        import torch

        x = self.spec.normalise_torch(torch.from_numpy(images).to(self.device))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.model(x).float().cpu().numpy()

    def embed_rows(self, rows: List[Dict]) -> List[Dict]:
        out = []
        todo = []  # (row position, image)
        for r in rows:
            e = {c: r.get(c) for c in schema.EMBEDDINGS_KEY_COLUMNS}
            e["embedding"] = None
            if r.get("status") == schema.FRAME_OK:
                try:
                    todo.append((len(out), self._prepare(r["crop"])))
                except ValueError as exc:
                    e["status"] = schema.EMBED_ERROR
                    e["error"] = f"{r.get('video_id')} frame {r.get('frame_index')}: {exc}"
            out.append(e)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            feats = self.forward(np.stack([img for _, img in chunk]))
            for (pos, _), f in zip(chunk, feats):
                out[pos]["embedding"] = f.tolist()
        return out
