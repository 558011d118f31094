"""Crop geometry: the detected box enlarged around its centre, clipped to the frame, resized to a
square (no alignment, as in the paper); or, with ``extract.align``, a similarity transform that puts
the eyes and mouth on canonical points (roll, scale and offset taken out of a pair's difference)."""

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


# Where the eye centres and the mouth centre land in an aligned crop, as fractions of its side: the
# medians of the unaligned 1.3x Haar crops of real footage (realdev), so an aligned crop frames a
# face as the unaligned one does and only its roll, scale and offset change between frames.
CANONICAL_POINTS = np.array([[0.364, 0.422], [0.636, 0.422], [0.5, 0.724]], dtype=np.float64)


def alignment_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2): the left eye's centre, the right eye's and the mouth's, from 68 iBUG points."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[48:68].mean(axis=0)])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation taking ``src`` points (N, 2) nearest to
    ``dst`` in least squares (Umeyama, no reflection)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    var = (s ** 2).sum() / len(src)
    scale = float((sigma * np.diag(sign)).sum() / var) if var > 0 else 1.0
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def aligned_crop(image: np.ndarray, landmarks: np.ndarray, size: int):
    """The ``size`` square crop with the eyes and mouth on :data:`CANONICAL_POINTS`.

    Returns (crop, matrix from frame to crop pixels, window): the window is the frame box (x0, y0,
    x1, y1) the crop covers. A face larger than the crop is first shrunk with area averaging (a
    warp alone would alias it), inside that window only."""
    import cv2

    matrix = similarity_transform(alignment_points(landmarks), CANONICAL_POINTS * size)
    scale = float(np.hypot(*matrix[:, 0]))
    inverse = cv2.invertAffineTransform(matrix)
    corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]]), inverse)
    height, width = image.shape[:2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    window = np.array([max(0, x0), max(0, y0), min(width, x1), min(height, y1)], dtype=np.int32)
    if window[2] - window[0] < 2 or window[3] - window[1] < 2:
        return None, matrix, window
    patch = image[window[1]:window[3], window[0]:window[2]]
    # frame -> patch: shift by the window; patch -> shrunk patch: scale by `shrink`
    shrink = min(1.0, scale * 1.25)
    if shrink < 1.0:
        patch = cv2.resize(patch, (max(1, round(patch.shape[1] * shrink)), max(1, round(patch.shape[0] * shrink))),
                           interpolation=cv2.INTER_AREA)
    to_patch = np.array([[shrink, 0, -shrink * window[0]], [0, shrink, -shrink * window[1]], [0, 0, 1]])
    warp = (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_patch))[:2]
    crop = cv2.warpAffine(patch, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, matrix, window
