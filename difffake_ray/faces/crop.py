"""Crop geometry: the detected box enlarged around its centre, clipped to the frame, resized to a
square (no alignment, as in the paper)."""

from __future__ import annotations

import numpy as np


def crop_window(box, scale: float, frame_width: int, frame_height: int) -> np.ndarray:
    """(x0, y0, x1, y1), the box (x, y, w, h) scaled by ``scale`` around its centre, clipped."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2.0, y + h / 2.0
    half_w, half_h = w * scale / 2.0, h * scale / 2.0
    x0 = int(max(0, np.floor(cx - half_w)))
    y0 = int(max(0, np.floor(cy - half_h)))
    x1 = int(min(frame_width, np.ceil(cx + half_w)))
    y1 = int(min(frame_height, np.ceil(cy + half_h)))
    return np.array([x0, y0, x1, y1], dtype=np.int32)


def crop_face(image: np.ndarray, window: np.ndarray, size: int) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = (int(v) for v in window)
    patch = image[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def to_crop_coordinates(points: np.ndarray, window: np.ndarray, size: int) -> np.ndarray:
    """Frame pixel points (N, 2) -> pixel points of the ``size`` x ``size`` crop."""
    x0, y0, x1, y1 = (float(v) for v in window)
    sx = size / max(x1 - x0, 1.0)
    sy = size / max(y1 - y0, 1.0)
    out = np.empty_like(points, dtype=np.float32)
    out[:, 0] = (points[:, 0] - x0) * sx
    out[:, 1] = (points[:, 1] - y0) * sy
    return out
