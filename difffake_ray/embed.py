"""Embedding of stored crops: decode, optional robustness perturbation, batched forward pass."""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


IMAGE, DECODE_ERROR = "image", "decode_error"  # the columns prepare_crops adds for the model stage


def prepare_crop(crop: bytes, spec: InputSpec, perturbation: str = "none") -> np.ndarray:
    """A stored crop -> the model's input pixels: decoded, perturbed, resized as in training."""
    return spec.resize(perturb(decode_image(crop), perturbation))


def prepare_crops(faces: pa.Table, spec: InputSpec, perturbation: str = "none") -> pa.Table:
    """CPU stage of embed: the faces rows of a part (key columns + crop) -> the key columns, each
    usable crop decoded, perturbed and resized as the model wants (``image``: HxWx3 uint8 bytes,
    null where there is none) and ``decode_error`` where a stored crop would not decode."""
    n, s = faces.num_rows, spec.size
    pixels = np.zeros((n, s, s, 3), np.uint8)
    has_image = np.zeros(n, bool)
    errors: List[Optional[str]] = [None] * n
    statuses, crops = faces["status"].to_pylist(), faces["crop"]
    for i, status in enumerate(statuses):
        if status != schema.FRAME_OK:
            continue
        try:
            pixels[i] = prepare_crop(crops[i].as_py(), spec, perturbation)
            has_image[i] = True
        except ValueError as exc:
            errors[i] = f"{faces['video_id'][i].as_py()} frame {faces['frame_index'][i].as_py()}: {exc}"
    valid = pa.array(has_image).buffers()[1]  # a bitmap: rows without an image are null
    image = pa.FixedSizeBinaryArray.from_buffers(pa.binary(s * s * 3), n, [valid, pa.py_buffer(pixels)])
    return (faces.select(schema.EMBEDDINGS_KEY_COLUMNS).append_column(IMAGE, image)
            .append_column(DECODE_ERROR, pa.array(errors, pa.string())))


def embeddings_table(prepared: pa.Table, features: np.ndarray, has_image: np.ndarray, dim: int) -> pa.Table:
    """The embeddings part: key columns, crops that failed to decode marked ``embed_error``, and
    the features as a fixed-size list column built from the numpy array."""
    errors = prepared[DECODE_ERROR]
    failed = pc.is_valid(errors)
    out_schema = schema.embeddings_schema(dim)
    status = pc.if_else(failed, pa.scalar(schema.EMBED_ERROR), prepared["status"])
    error = pc.if_else(failed, errors, prepared["error"])
    columns = {c: prepared[c] for c in schema.EMBEDDINGS_KEY_COLUMNS}
    columns.update(status=status, error=error)
    emb = schema.embeddings_from_numpy(features, has_image).cast(out_schema.field("embedding").type)
    return pa.table({**columns, "embedding": emb}).cast(out_schema)


def images_of(prepared: pa.Table) -> Tuple[np.ndarray, np.ndarray]:
    """-> (every row's pixels (N, H, W, 3) uint8, without a copy; which rows hold an image)."""
    column = prepared[IMAGE].combine_chunks()
    side = int(round((column.type.byte_width // 3) ** 0.5))
    n = len(column)
    data = column.buffers()[1]
    pixels = np.frombuffer(data, np.uint8, count=n * side * side * 3,
                           offset=column.offset * column.type.byte_width).reshape(n, side, side, 3)
    return pixels, column.is_valid().to_numpy(zero_copy_only=False)


class CropEmbedder:
    """Loaded once per worker: ``embed_prepared(prepared part) -> embeddings part``
    (schema.embeddings_schema); ``embed_faces`` does both stages in one process."""

    def __init__(self, backbone_uri: str, batch_size: int = 64, amp: bool = False, channels_last: bool = True,
                 perturbation: str = "none", device: Optional[str] = None):
        import torch

        from .backbone import load_embedder

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.meta = load_embedder(backbone_uri, str(self.device))
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last, self.batch_size = channels_last, batch_size
        self.amp = amp and self.device.type == "cuda"
        if self.device.type == "cuda" and not self.amp:
            # full precision means fp32 products too: TF32 would round them to a 10-bit mantissa
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.perturbation = perturbation
        self.dim = int(self.meta["feature_dim"])
        self.spec = InputSpec.from_meta(self.meta)  # as in training: the model's size, mean/std, interpolation
        perturb(np.zeros((8, 8, 3), np.uint8), perturbation)  # an unknown name fails here, not per row

    def prepare(self, crop: bytes) -> np.ndarray:
        return prepare_crop(crop, self.spec, self.perturbation)

    def forward(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) float32."""
        import torch

        x = self.spec.normalise_torch(torch.from_numpy(images).to(self.device))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.model(x).float().cpu().numpy()

    def embed_prepared(self, prepared: pa.Table) -> pa.Table:
        """Model stage of embed: a prepared part (``prepare_crops``) -> its embeddings part."""
        pixels, has_image = images_of(prepared)
        features = np.zeros((len(pixels), self.dim), np.float32)
        rows = np.flatnonzero(has_image)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            features[chunk] = self.forward(pixels[chunk])
        return embeddings_table(prepared, features, has_image, self.dim)

    def embed_faces(self, faces: pa.Table) -> pa.Table:
        """Both stages in one process: faces rows -> embeddings rows (tests, benchmarks)."""
        return self.embed_prepared(prepare_crops(faces, self.spec, self.perturbation))
