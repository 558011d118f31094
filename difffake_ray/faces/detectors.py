"""Face detectors (registry). A detector maps an RGB frame to boxes (N, 4) as x, y, w, h in that
frame's pixels.

Haar on a full 720p/1080p frame spends most of its time on window sizes far smaller than any face
a 224px crop would be made from; detecting on a frame downscaled to ``max_side`` and mapping the
box back keeps recall (see bench/extract.py) at a fraction of the cost.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..registry import Registry

DETECTORS = Registry("face detector", modules={"yunet": "difffake_ray.faces.yunet"})


def create_detector(name: str, **options):
    """The detector ``name`` with those of ``options`` its constructor takes (the extract config
    offers every detector's: ``cascade`` is Haar's alone)."""
    return DETECTORS.create_from(name, options)


class FaceDetector:
    """The contract of a face detector: ``detect(image)`` -> boxes (N, 4) x, y, w, h of an RGB
    frame in its pixels; ``near(image, box)``, the boxes found in a window around a track's last
    box (tracking between full searches), or None when the detector cannot search a window (each
    frame is then searched whole)."""

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def near(self, image_rgb: np.ndarray, box) -> Optional[np.ndarray]:
        return None


def haar_cascade_path(name: str) -> str:
    """Path of an OpenCV Haar cascade shipped in ``cv2.data`` (or an explicit file path)."""
    import cv2

    if os.path.isfile(name):
        return name
    path = os.path.join(cv2.data.haarcascades, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Haar cascade {name!r} not found in {cv2.data.haarcascades}: OpenCV >= 5.0 wheels ship "
            "without cascades; install opencv-contrib-python-headless<5 (pyproject pins it)"
        )
    return path


@DETECTORS.register("haar")
class HaarFaceDetector(FaceDetector):
    """OpenCV's frontal Haar cascade on the frame scaled to ``max_side``."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", max_side: int = 640,
                 min_face_fraction: float = 0.06, scale_factor: float = 1.1, min_neighbors: int = 5):
        import cv2

        self.path = haar_cascade_path(cascade)
        self.classifier = cv2.CascadeClassifier(self.path)
        if self.classifier.empty():
            raise RuntimeError(f"OpenCV could not load the Haar cascade {self.path}")
        self.max_side = int(max_side)
        self.min_face_fraction = float(min_face_fraction)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def near(self, image_rgb: np.ndarray, box) -> np.ndarray:
        return detect_near(self, image_rgb, box)

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        min_side = max(1, int(self.min_face_fraction * min(gray.shape)))
        boxes = self.classifier.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side),
        )
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.asarray(boxes, dtype=np.float64) / scale
        return np.round(boxes).astype(np.int32)


def detect_near(detector, image_rgb: np.ndarray, box, region_scale: float = 2.2,
                box_px: int = 64) -> np.ndarray:
    """Search only a window around ``box`` (a previous frame's face), rescaled so that a face of
    the box's size spans ``box_px`` pixels, at scales 0.6x-1.6x of it.

    Haar's cost grows with the number of scale levels it scans: restricting the scales to those a
    face of a nearby frame can have, and the area to where it can be, cuts the cost ~10x. The
    window (``region_scale`` times the face) lets a face move 0.6 of its width between two sampled
    frames; callers fall back to a full-frame search when nothing is found here.
    """
    import cv2

    x, y, w, h = (float(v) for v in box)
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * region_scale
    H, W = image_rgb.shape[:2]
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(W, cx + side / 2)), int(min(H, cy + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return np.zeros((0, 4), dtype=np.int32)
    scale = box_px / max(w, h, 1.0)
    patch = cv2.cvtColor(image_rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(patch, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                       interpolation=interp)
    lo, hi = int(box_px * 0.6), int(box_px * 1.6)
    boxes = detector.classifier.detectMultiScale(patch, scaleFactor=detector.scale_factor,
                                                 minNeighbors=detector.min_neighbors,
                                                 minSize=(lo, lo), maxSize=(hi, hi))
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    boxes = np.asarray(boxes, dtype=np.float64) / scale + np.array([x0, y0, 0, 0])
    return np.round(boxes).astype(np.int32)


def face_sizes(boxes: np.ndarray, by: str = "area") -> np.ndarray:
    """The size of each box of (N, 4) x, y, w, h: by area (paper) or by w + h (reference code)."""
    boxes = np.asarray(boxes)
    if by == "area":
        return boxes[:, 2].astype(np.int64) * boxes[:, 3]
    if by == "sum":
        return boxes[:, 2].astype(np.int64) + boxes[:, 3]
    raise ValueError(f"largest_by must be 'area' or 'sum', got {by!r}")


def largest_face(boxes: np.ndarray, by: str = "area") -> Optional[np.ndarray]:
    """The largest box of (N, 4) x, y, w, h: by area (paper) or by w + h (reference code)."""
    if boxes is None or len(boxes) == 0:
        return None
    return np.asarray(boxes)[int(np.argmax(face_sizes(boxes, by)))]


def largest_faces(boxes: np.ndarray, n: int, by: str = "area") -> np.ndarray:
    """The ``n`` largest boxes of (N, 4), largest first."""
    if boxes is None or len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    boxes = np.asarray(boxes)
    return boxes[np.argsort(-face_sizes(boxes, by), kind="stable")[:n]]
