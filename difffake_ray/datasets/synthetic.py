"""Synthetic face videos that OpenCV's Haar cascade detects: the project's test, demo and quality data.

A face is drawn from an ``Identity`` (skin tone, proportions, hair, eye colour) in a ``Pose``
(position, size, roll, yaw, mouth opening, blink) on a textured background, and recorded through a
``Camera`` whose ``Look`` (exposure drift, colour cast, focus, noise, compression) varies per video.
Each split has its own pool of identities, several videos each.

- real videos: one identity whose head drifts, turns, rolls, talks and blinks smoothly over time;
- fakes, one ``method`` per manipulation kind, each re-fitted frame by frame as generators are:
  ``faceswap`` (another identity's whole face), ``inner_swap`` (inner face with colour and
  resolution mismatch), ``mouth_reenact`` (lip-sync: the mouth redrawn to another speech track at
  low resolution), ``eye_edit`` (another identity's eyes and brows), ``gan_smooth`` (the recorded
  face re-synthesised without its camera texture), ``flicker`` (per-frame colour and boundary);
- ``astronaut``: a real photograph (``skimage.data.astronaut()``) panned and zoomed slowly.

Videos are H.264 (PyAV/libx264), deterministic for a given seed and index.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from .. import storage
from ..config import CorpusConfig

SKIN_TONES = [(224, 172, 140), (198, 134, 98), (241, 194, 160), (160, 104, 72), (214, 160, 120),
              (232, 184, 150), (120, 80, 55), (250, 208, 178)]


@dataclass
class Identity:
    skin: Tuple[int, int, int]
    hair: Tuple[int, int, int]
    iris: Tuple[int, int, int]
    lips: Tuple[int, int, int]
    aspect: float  # face height / width
    eye_spacing: float  # half distance between eyes, in face widths
    eye_size: float
    brow_thickness: float
    nose_length: float
    mouth_width: float


@dataclass
class Pose:
    cx: float
    cy: float
    width: float  # face width in pixels
    roll: float  # degrees
    yaw: float  # -1..1, shifts the features sideways
    mouth_open: float  # 0..1
    eyes_open: float  # 0..1


def random_identity(rng: np.random.Generator) -> Identity:
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=float)
    skin = tuple(int(v) for v in np.clip(skin + rng.normal(0, 8, 3), 0, 255))
    hair = tuple(int(v) for v in rng.integers(10, 90, 3))
    iris = tuple(int(v) for v in rng.integers(20, 110, 3))
    lips = tuple(int(v) for v in np.clip(np.array([150, 60, 70]) + rng.normal(0, 15, 3), 0, 255))
    return Identity(
        skin=skin, hair=hair, iris=iris, lips=lips,
        aspect=float(rng.uniform(1.22, 1.38)), eye_spacing=float(rng.uniform(0.19, 0.23)),
        eye_size=float(rng.uniform(0.085, 0.11)), brow_thickness=float(rng.uniform(0.035, 0.05)),
        nose_length=float(rng.uniform(0.2, 0.26)), mouth_width=float(rng.uniform(0.32, 0.4)),
    )


def pose_track(rng: np.random.Generator, n_frames: int, frame_w: int, frame_h: int) -> List[Pose]:
    """A smooth head motion: sums of slow sinusoids with random phases."""
    t = np.arange(n_frames) / 25.0
    width0 = frame_h * rng.uniform(0.28, 0.36)
    cx0 = frame_w * rng.uniform(0.38, 0.62)
    cy0 = frame_h * rng.uniform(0.48, 0.54)

    def wave(amplitude: float, lo: float = 0.15, hi: float = 0.6) -> np.ndarray:
        f1, f2 = rng.uniform(lo, hi, 2)
        p1, p2 = rng.uniform(0, 2 * math.pi, 2)
        return amplitude * (0.65 * np.sin(2 * math.pi * f1 * t + p1) + 0.35 * np.sin(2 * math.pi * f2 * t + p2))

    cx = cx0 + wave(frame_w * 0.06)
    cy = cy0 + wave(frame_h * 0.03)
    width = width0 * (1 + wave(0.08))
    roll = wave(9.0)
    yaw = np.clip(wave(0.5), -0.6, 0.6)
    mouth = np.clip(0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(1.5, 3.0) * t + rng.uniform(0, 6)), 0, 1)
    mouth = mouth * (wave(1.0, 0.2, 0.4) > -0.2)
    blink_at = set(rng.choice(n_frames, size=max(1, n_frames // 60), replace=False).tolist())
    eyes = np.array([0.1 if (i in blink_at or i - 1 in blink_at) else 1.0 for i in range(n_frames)])
    return [Pose(float(cx[i]), float(cy[i]), float(width[i]), float(roll[i]), float(yaw[i]),
                 float(mouth[i]), float(eyes[i])) for i in range(n_frames)]


def textured_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    import cv2

    base = rng.integers(60, 200, 3).astype(np.float32)
    small = rng.normal(0, 1, (max(2, h // 40), max(2, w // 40), 3)).astype(np.float32)
    low = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 25
    grad = np.linspace(-20, 20, w, dtype=np.float32)[None, :, None]
    img = base + low + grad + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(6):  # furniture-like blocks away from the face's usual place
        x0 = int(rng.integers(0, w)); y0 = int(rng.integers(0, h))
        colour = tuple(int(v) for v in rng.integers(30, 220, 3))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(20, w // 6)), y0 + int(rng.integers(20, h // 5))), colour, -1)
    return cv2.GaussianBlur(img, (5, 5), 0)


def _transform(pose: Pose, aspect: float):
    """Face-local (u, v) in face widths, v down, origin at the face centre -> frame pixels."""
    c, s = math.cos(math.radians(pose.roll)), math.sin(math.radians(pose.roll))

    def to_px(u: float, v: float) -> Tuple[int, int]:
        x, y = u * pose.width, v * pose.width
        return (int(round(pose.cx + c * x - s * y)), int(round(pose.cy + s * x + c * y)))

    return to_px


def draw_face(canvas: np.ndarray, ident: Identity, pose: Pose, inner_only: bool = False) -> None:
    """Draw a face in place. ``inner_only`` draws skin + features without hair or outline shading
    (the layer a face swap blends in)."""
    import cv2

    to_px = _transform(pose, ident.aspect)
    W = pose.width
    yaw_shift = pose.yaw * 0.08
    ax = lambda a, b: (max(1, int(a * W)), max(1, int(b * W)))  # noqa: E731
    if not inner_only:
        # hair behind and above the face
        cv2.ellipse(canvas, to_px(0, -0.12), ax(0.58, 0.62 * ident.aspect), pose.roll, 180, 360, ident.hair, -1)
        # neck
        neck = [to_px(-0.2, 0.3), to_px(0.2, 0.3), to_px(0.24, 1.1), to_px(-0.24, 1.1)]
        shade = tuple(int(v * 0.85) for v in ident.skin)
        cv2.fillConvexPoly(canvas, np.array(neck, np.int32), shade)
    cv2.ellipse(canvas, to_px(0, 0), ax(0.5, 0.5 * ident.aspect), pose.roll, 0, 360, ident.skin, -1)
    if not inner_only:
        # fringe of hair on the forehead
        cv2.ellipse(canvas, to_px(0, -0.5 * ident.aspect + 0.02), ax(0.46, 0.16), pose.roll, 180, 360, ident.hair, -1)
    ey = -0.08 * ident.aspect
    for side in (-1, 1):
        ex = side * ident.eye_spacing + yaw_shift
        # Haar keys on the eye band being darker than cheeks and nose bridge: sockets and brows
        # are dark in absolute terms so that dark skin tones are found as reliably as light ones.
        b0, b1 = to_px(ex - 0.11, ey - 0.1), to_px(ex + 0.11, ey - 0.11 - 0.01 * side)
        cv2.line(canvas, b0, b1, tuple(int(v * 0.35) for v in ident.hair), max(2, int(ident.brow_thickness * W)))
        cv2.ellipse(canvas, to_px(ex, ey), ax(ident.eye_size * 1.35, ident.eye_size * 0.8), pose.roll, 0, 360,
                    tuple(int(v * 0.4) for v in ident.skin), -1)
        open_h = max(0.08, pose.eyes_open)
        cv2.ellipse(canvas, to_px(ex, ey), ax(ident.eye_size * 0.85, ident.eye_size * 0.4 * open_h), pose.roll,
                    0, 360, (190, 190, 185), -1)
        if pose.eyes_open > 0.3:
            cv2.circle(canvas, to_px(ex + yaw_shift * 0.3, ey), max(1, int(ident.eye_size * 0.4 * W)), ident.iris, -1)
            cv2.circle(canvas, to_px(ex + yaw_shift * 0.3, ey), max(1, int(ident.eye_size * 0.18 * W)), (10, 10, 10), -1)
    # nose: a ridge and two nostrils
    nose_dark = tuple(int(v * 0.72) for v in ident.skin)
    top, tip = to_px(yaw_shift * 1.2, ey + 0.05), to_px(yaw_shift * 1.6, ey + 0.05 + ident.nose_length)
    cv2.line(canvas, top, tip, nose_dark, max(1, int(0.025 * W)))
    for side in (-1, 1):
        cv2.circle(canvas, to_px(yaw_shift * 1.6 + side * 0.05, ey + 0.06 + ident.nose_length),
                   max(1, int(0.022 * W)), tuple(int(v * 0.45) for v in ident.skin), -1)
    # mouth: lips and an opening that follows speech
    my = ey + 0.1 + ident.nose_length + 0.14
    mx = yaw_shift * 1.3
    cv2.ellipse(canvas, to_px(mx, my), ax(ident.mouth_width / 2, 0.035 + 0.05 * pose.mouth_open), pose.roll,
                0, 360, ident.lips, -1)
    if pose.mouth_open > 0.15:
        cv2.ellipse(canvas, to_px(mx, my), ax(ident.mouth_width / 2.6, 0.04 * pose.mouth_open), pose.roll,
                    0, 360, (40, 15, 20), -1)


def inner_face_mask(shape: Tuple[int, int], ident: Identity, pose: Pose, scale: float = 1.0,
                    blur: int = 15, offset=(0.0, 0.0)) -> np.ndarray:
    """A soft float32 mask over brows, eyes, nose and mouth (where a face swap pastes)."""
    import cv2

    mask = np.zeros(shape, np.float32)
    p = replace(pose, cx=pose.cx + offset[0] * pose.width, cy=pose.cy + offset[1] * pose.width)
    to_px = _transform(p, ident.aspect)
    W = pose.width * scale
    cv2.ellipse(mask, to_px(0, 0.06), (int(0.4 * W), int(0.44 * ident.aspect * W)), pose.roll, 0, 360, 1.0, -1)
    k = max(3, int(blur) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _face_roi(pose: Pose, w: int, h: int, margin: float = 0.85):
    r = int(pose.width * margin)
    x0, y0 = max(0, int(pose.cx) - r), max(0, int(pose.cy) - r)
    return slice(y0, min(h, int(pose.cy) + r)), slice(x0, min(w, int(pose.cx) + r))


def _blend_roi(frame: np.ndarray, layer: np.ndarray, mask: np.ndarray, roi) -> np.ndarray:
    """frame[roi] = layer * mask + frame * (1 - mask), only over the face region."""
    m = mask[roi][..., None]
    frame[roi] = (layer[roi].astype(np.float32) * m + frame[roi] * (1 - m)).astype(np.uint8)
    return frame


@dataclass
class Look:
    """How one video was captured: the natural variation between real videos (exposure drift,
    colour cast, focus, sensor noise, compression). Fakes are rendered through the same kind of
    look, so that none of it tells a fake from a real."""

    gain: float  # amplitude of the slow exposure drift
    gain_hz: float
    phase: float
    cast: Tuple[float, float, float]  # per-channel colour gain
    focus: int  # odd Gaussian kernel of the lens blur (1: sharp)
    noise: float  # sensor noise sigma
    crf: int  # H.264 quality of the upload


def random_look(rng: np.random.Generator) -> Look:
    return Look(gain=float(rng.uniform(0.0, 0.08)), gain_hz=float(rng.uniform(0.05, 0.4)),
                phase=float(rng.uniform(0, 2 * math.pi)), cast=tuple(float(v) for v in rng.uniform(0.92, 1.08, 3)),
                focus=int(rng.choice([1, 3, 3, 5])), noise=float(rng.uniform(1.5, 4.0)), crf=int(rng.integers(18, 29)))


class Camera:
    """The capture of one video: lens blur, exposure drift and colour cast, then sensor noise
    (drawn once per video and rolled per frame: a fresh 720p normal field per frame cost more than
    rendering the face)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, look: Optional[Look] = None, fps: int = 25):
        self.look = look or random_look(rng)
        self.bank = np.clip(rng.normal(0, self.look.noise, (2 * h, w, 3)), -10, 10).astype(np.float32)
        self.h, self.rng, self.fps, self.i = h, rng, fps, 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        lk = self.look
        k = max(3, lk.focus)
        frame = cv2.GaussianBlur(frame, (k, k), 0)
        gain = 1.0 + lk.gain * math.sin(2 * math.pi * lk.gain_hz * self.i / self.fps + lk.phase)
        self.i += 1
        off = int(self.rng.integers(self.h))
        out = frame.astype(np.float32) * (np.asarray(lk.cast, np.float32) * gain) + self.bank[off:off + self.h]
        return np.clip(out, 0, 255).astype(np.uint8)


def _render(rng, w, h, n_frames, ident: Identity, look: Optional[Look],
            edit: Optional[Callable] = None, after_capture: bool = False) -> List[np.ndarray]:
    """Frames of ``ident`` moving on a textured background through one camera: the shared loop of
    the real and fake renderers. ``edit(frame, pose, roi) -> (layer, mask)`` is blended in over the
    face region of each frame, before the capture (a face pasted into the scene) or after it (a
    generator that re-synthesises the recorded face)."""
    bg = textured_background(rng, w, h)
    camera = Camera(rng, h, w, look)
    frames = []
    for pose in pose_track(rng, n_frames, w, h):
        f = bg.copy()
        draw_face(f, ident, pose)
        if edit is not None and after_capture:
            f = camera(f)
        if edit is not None:
            roi = _face_roi(pose, w, h)
            layer, mask = edit(f, pose, roi)
            f = _blend_roi(f, layer, mask, roi)
        frames.append(f if edit is not None and after_capture else camera(f))
    return frames


def render_real(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                source: Optional[Identity] = None) -> List[np.ndarray]:
    return _render(rng, w, h, n_frames, ident or random_identity(rng), look)


# Per-frame colour jitter (sd, 0-255 units) of a generated region: frame-by-frame generators do not
# hold colour steady, the most common temporal artefact of face manipulation.
FLICKER = 6.0
# Face generators work at a fixed size below the video's (e.g. 256 px faces, 96 px mouths): the
# pasted region is rendered this many times smaller and upscaled.
GENERATOR_DOWNSCALE = (2.0, 3.5)


def _low_resolution(layer: np.ndarray, roi, factor: float) -> np.ndarray:
    """The face region rendered at 1/factor of its size and upscaled: a generator's output size."""
    import cv2

    patch = layer[roi]
    ph, pw = patch.shape[:2]
    if factor <= 1 or ph < 8 or pw < 8:
        return layer
    small = cv2.resize(patch, (max(2, int(pw / factor)), max(2, int(ph / factor))), interpolation=cv2.INTER_AREA)
    layer[roi] = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_LINEAR)
    return layer


def _jittered(pose: Pose, rng, scale: float = 0.08, roll: float = 4.0) -> Pose:
    """The pose a generator fitted to this frame: its fit to the head jitters from frame to frame."""
    return replace(pose, width=pose.width * rng.uniform(1 - scale, 1 + scale), roll=pose.roll + rng.normal(0, roll))


def _region_mask(shape, ident: Identity, pose: Pose, centre, axes, blur: int, rng, jitter: float = 0.03):
    """Soft elliptical mask at face-local ``centre`` with ``axes`` (face widths), offset per frame."""
    import cv2

    mask = np.zeros(shape, np.float32)
    off = rng.normal(0, jitter, 2)
    to_px = _transform(replace(pose, cx=pose.cx + off[0] * pose.width, cy=pose.cy + off[1] * pose.width), ident.aspect)
    W = pose.width
    cv2.ellipse(mask, to_px(*centre), (max(1, int(axes[0] * W)), max(1, int(axes[1] * W))), pose.roll, 0, 360, 1.0, -1)
    k = max(3, int(blur) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def render_faceswap(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                    source: Optional[Identity] = None) -> List[np.ndarray]:
    """Whole-face swap: another identity's face (skin, brows, eyes, nose, mouth) over the target's
    head, colour-corrected towards the target's skin but not fully, re-fitted every frame."""
    target, source = ident or random_identity(rng), source or random_identity(rng)
    skin = tuple(int(0.7 * t + 0.3 * s) for t, s in zip(target.skin, source.skin))
    swapped = replace(source, aspect=target.aspect, skin=skin)
    factor = float(rng.uniform(GENERATOR_DOWNSCALE[0], GENERATOR_DOWNSCALE[1]))

    def edit(f, pose, roi):
        layer = f.copy()
        draw_face(layer, swapped, _jittered(pose, rng), inner_only=True)
        layer[roi] = np.clip(layer[roi] + rng.normal(0, FLICKER, 3), 0, 255)
        layer = _low_resolution(layer, roi, factor)
        mask = _region_mask((h, w), target, pose, (0, 0.02), (0.47, 0.47 * target.aspect), int(rng.integers(9, 31)), rng)
        return layer, mask

    return _render(rng, w, h, n_frames, target, look, edit)


def render_inner_swap(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                      source: Optional[Identity] = None) -> List[np.ndarray]:
    """Inner-face swap (brows to chin) with a colour mismatch and a lower resolution than the frame."""
    target, source = ident or random_identity(rng), source or random_identity(rng)
    colour_shift = rng.normal(0, 10, 3)
    factor = float(rng.uniform(1.5, 3.5))

    def edit(f, pose, roi):
        layer = f.copy()
        draw_face(layer, replace(source, aspect=target.aspect), _jittered(pose, rng), inner_only=True)
        layer[roi] = np.clip(layer[roi] + colour_shift + rng.normal(0, FLICKER, 3), 0, 255)
        layer = _low_resolution(layer, roi, factor)
        return layer, inner_face_mask((h, w), target, pose, scale=rng.uniform(0.95, 1.05),
                                      blur=int(rng.integers(7, 31)), offset=tuple(rng.normal(0, 0.015, 2)))

    return _render(rng, w, h, n_frames, target, look, edit)


def render_mouth_reenact(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                         source: Optional[Identity] = None) -> List[np.ndarray]:
    """Lip-sync style reenactment: the mouth region redrawn to another speech track, at a
    generator's low resolution, pasted through a mask around the mouth and lower face."""
    ident = ident or random_identity(rng)
    factor = float(rng.uniform(2.0, 4.0))
    speech_hz, speech_phase = rng.uniform(2.0, 4.0), rng.uniform(0, 6)
    shift = rng.normal(0, 6, 3)
    my = -0.08 * ident.aspect + 0.24 + ident.nose_length

    def edit(f, pose, roi):
        edit.i += 1
        opening = float(np.clip(0.5 + 0.5 * math.sin(2 * math.pi * speech_hz * edit.i / 25 + speech_phase)
                                + rng.normal(0, 0.15), 0, 1))
        layer = f.copy()
        draw_face(layer, ident, replace(_jittered(pose, rng), mouth_open=opening), inner_only=True)
        layer[roi] = np.clip(layer[roi] + shift + rng.normal(0, FLICKER, 3), 0, 255)
        layer = _low_resolution(layer, roi, factor)
        mask = _region_mask((h, w), ident, pose, (0, my), (0.3, 0.2), int(rng.integers(7, 25)), rng)
        return layer, mask

    edit.i = 0
    return _render(rng, w, h, n_frames, ident, look, edit)


def render_eye_edit(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                    source: Optional[Identity] = None) -> List[np.ndarray]:
    """Eye-region edit: another identity's eyes and brows (iris colour, size, brow weight) pasted
    into the eye band, re-fitted every frame."""
    ident, source = ident or random_identity(rng), source or random_identity(rng)
    edited = replace(ident, iris=source.iris, eye_size=source.eye_size, brow_thickness=source.brow_thickness,
                     hair=source.hair)
    shift = rng.normal(0, 6, 3)
    factor = float(rng.uniform(GENERATOR_DOWNSCALE[0], GENERATOR_DOWNSCALE[1]))
    ey = -0.08 * ident.aspect

    def edit(f, pose, roi):
        layer = f.copy()
        draw_face(layer, edited, _jittered(pose, rng), inner_only=True)
        layer[roi] = np.clip(layer[roi] + shift + rng.normal(0, FLICKER, 3), 0, 255)
        layer = _low_resolution(layer, roi, factor)
        mask = _region_mask((h, w), ident, pose, (0, ey - 0.03), (0.4, 0.14), int(rng.integers(7, 25)), rng)
        return layer, mask

    return _render(rng, w, h, n_frames, ident, look, edit)


def render_gan_smooth(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                      source: Optional[Identity] = None) -> List[np.ndarray]:
    """GAN-like re-synthesis of the recorded face: its texture (sensor noise, fine detail) replaced
    by a smooth, slightly re-coloured rendering whose smoothness changes from frame to frame."""
    import cv2

    ident = ident or random_identity(rng)
    shift = rng.normal(0, 5, 3)

    def edit(f, pose, roi):
        sigma = float(rng.uniform(1.0, 3.5))
        layer = f.copy()
        patch = cv2.bilateralFilter(np.ascontiguousarray(f[roi]), 7, 30, 2 * sigma)
        layer[roi] = np.clip(cv2.GaussianBlur(patch, (0, 0), 0.6 * sigma).astype(np.float32) + shift
                             + rng.normal(0, FLICKER, 3), 0, 255)
        mask = _region_mask((h, w), ident, pose, (0, 0.02), (0.46, 0.46 * ident.aspect), int(rng.integers(9, 25)), rng, 0.01)
        return layer, mask

    return _render(rng, w, h, n_frames, ident, look, edit, after_capture=True)


def render_flicker(rng, w, h, n_frames, ident: Optional[Identity] = None, look: Optional[Look] = None,
                   source: Optional[Identity] = None) -> List[np.ndarray]:
    """Temporal flicker: the inner face's colour and blending boundary change from frame to frame."""
    ident = ident or random_identity(rng)

    def edit(f, pose, roi):
        shifted = f.copy()
        shifted[roi] = np.clip(f[roi].astype(np.float32) + rng.normal(0, 14, 3), 0, 255)
        return shifted, inner_face_mask((h, w), ident, pose, scale=rng.uniform(0.9, 1.1), blur=int(rng.integers(3, 41)))

    return _render(rng, w, h, n_frames, ident, look, edit)


def _astronaut_frames(rng, w, h, n_frames, fake: bool) -> List[np.ndarray]:
    import cv2
    from skimage import data

    photo = data.astronaut()  # 512x512 RGB, face near (x 170-250, y 60-160)
    frames = []
    camera = Camera(rng, h, w)
    phase = rng.uniform(0, 2 * math.pi)
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        zoom = 1.0 + 0.12 * math.sin(2 * math.pi * t + phase)
        side = int(512 / zoom)
        x0 = int((512 - side) * (0.5 + 0.4 * math.sin(math.pi * t + phase)))
        view = photo[0:side, x0:x0 + side]
        view = cv2.resize(view, (h, h), interpolation=cv2.INTER_AREA)
        f = np.zeros((h, w, 3), np.uint8)
        f[:] = (40, 40, 50)
        left = (w - h) // 2
        f[:, left:left + h] = view
        if fake:
            region = np.zeros((h, w), np.float32)
            s = h / side
            cx, cy = left + (212 - x0) * s, 110 * s
            cv2.ellipse(region, (int(cx), int(cy)), (int(38 * s), int(50 * s)), 0, 0, 360, 1.0, -1)
            k = int(rng.integers(3, 31)) | 1
            m = cv2.GaussianBlur(region, (k, k), 0)[..., None]
            shifted = np.clip(f.astype(np.float32) + rng.normal(0, 16, 3), 0, 255)
            f = (shifted * m + f * (1 - m)).astype(np.uint8)
        frames.append(camera(f))
    return frames


# manipulation kinds: each is a ``method`` of the manifest; renderer(rng, w, h, n, ident, look, source)
FAKE_RENDERERS: Dict[str, Callable] = {
    "faceswap": render_faceswap,
    "inner_swap": render_inner_swap,
    "mouth_reenact": render_mouth_reenact,
    "eye_edit": render_eye_edit,
    "gan_smooth": render_gan_smooth,
    "flicker": render_flicker,
}


def write_video(frames: List[np.ndarray], uri: str, fps: int = 25, crf: int = 20) -> None:
    """Encode RGB frames as H.264 mp4 (yuv420p) to any fsspec URI."""
    import av

    h, w = frames[0].shape[:2]
    local = uri if not storage.is_remote(uri) else None
    tmpdir = None
    if local is None:
        tmpdir = tempfile.mkdtemp(prefix="difffake-video-")
        local = os.path.join(tmpdir, os.path.basename(uri))
    elif uri.startswith("file://"):
        local = uri[len("file://"):]
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    with av.open(local, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if tmpdir is not None:
        with open(local, "rb") as fh:
            storage.write_bytes_atomic(uri, fh.read())
        os.remove(local)
        os.rmdir(tmpdir)


def identity_pool(seed: int, split: str, n: int) -> List[Identity]:
    """The identities that appear in one split: the same person may star in several videos of a
    split, never in two splits (no identity leaks from training into test)."""
    code = {"train": 1, "test": 2}[split]
    return [random_identity(np.random.default_rng([seed, code, k])) for k in range(max(2, n))]


def plan_corpus(cfg: CorpusConfig) -> List[Dict[str, object]]:
    """The list of videos to generate (label, method, split, identities, size, length, seed),
    before any rendering. Reals: half train, half test. Fakes: test only, cycling over
    ``cfg.fake_methods``, made of test identities (a swap's source is another test identity)."""
    rng = np.random.default_rng(cfg.seed)
    n_fake = int(round(cfg.n_videos * cfg.fake_fraction))
    n_real = cfg.n_videos - n_fake
    n_ids = cfg.identities_per_split
    plan = []
    for i in range(cfg.n_videos):
        fake = i >= n_real
        size = cfg.sizes[int(rng.integers(len(cfg.sizes)))]
        seconds = float(rng.uniform(cfg.min_seconds, cfg.max_seconds))
        if fake:
            k = i - n_real
            method = cfg.fake_methods[k % len(cfg.fake_methods)]
            split = "test"  # fakes are never used for fitting or training
            target = int(rng.integers(n_ids))
            source = int((target + 1 + rng.integers(n_ids - 1)) % n_ids)
        else:
            method = "original"
            split = "train" if i < (n_real + 1) // 2 else "test"
            target, source = (i if split == "train" else i - (n_real + 1) // 2) % n_ids, -1
        plan.append(dict(index=i, label="fake" if fake else "real", method=method, split=split,
                         identity=target, source_identity=source, width=int(size[0]), height=int(size[1]),
                         seconds=seconds, seed=int(rng.integers(2**31))))
    if cfg.include_astronaut:
        for fake in (False, True):
            plan.append(dict(index=len(plan), label="fake" if fake else "real",
                             method="astronaut_flicker" if fake else "original", split="test",
                             identity=-1, source_identity=-1, width=640, height=360, seconds=cfg.min_seconds,
                             seed=int(rng.integers(2**31)), astronaut=True))
    return plan


def render_planned(item: Dict[str, object], fps: int, corpus_seed: int = 0,
                   identities_per_split: int = 6) -> Tuple[List[np.ndarray], Look]:
    """-> (RGB frames, the video's capture look)."""
    rng = np.random.default_rng(int(item["seed"]))
    n = max(2, int(round(float(item["seconds"]) * fps)))
    w, h = int(item["width"]), int(item["height"])
    look = random_look(rng)
    if item.get("astronaut"):
        return _astronaut_frames(rng, w, h, n, fake=item["label"] == "fake"), look
    pool = identity_pool(corpus_seed, str(item["split"]), identities_per_split)
    ident = pool[int(item["identity"])]
    source = pool[int(item["source_identity"])] if int(item["source_identity"]) >= 0 else None
    render = render_real if item["label"] == "real" else FAKE_RENDERERS[str(item["method"])]
    return render(rng, w, h, n, ident, look, source), look


def planned_relpath(item: Dict[str, object]) -> str:
    stem = f"{'astronaut' if item.get('astronaut') else 'vid'}_{int(item['index']):04d}.mp4"
    if item["label"] == "real":
        return f"real/{stem}"
    return f"fake/{item['method']}/{stem}"


def make_corpus(out_uri: str, cfg: Optional[CorpusConfig] = None, progress: bool = True,
                plan: Optional[List[Dict[str, object]]] = None) -> pa.Table:
    """Render the corpus under ``out_uri`` (real/, fake/<method>/) and write ``manifest.parquet``.

    Returns the manifest table. The same config gives the same videos and manifest. ``plan``: the
    videos to render instead of ``plan_corpus(cfg)``'s; items of that plan with other ``seed`` values
    are new videos of the same people.
    """
    from .manifest import manifest_table

    cfg = cfg or CorpusConfig()
    plan = plan_corpus(cfg) if plan is None else plan
    rows = []
    iterator = plan
    if progress:
        from tqdm import tqdm

        iterator = tqdm(plan, desc="make-corpus", unit="video")
    for item in iterator:
        rel = planned_relpath(item)
        uri = storage.join(out_uri, rel)
        frames, look = render_planned(item, cfg.fps, cfg.seed, cfg.identities_per_split)
        write_video(frames, uri, fps=cfg.fps, crf=look.crf)
        # URIs relative to the manifest: the corpus folder can be moved or uploaded as a whole
        rows.append(dict(video_id=f"{cfg.dataset}/{rel[:-4]}", uri=rel, label=item["label"],
                         dataset=cfg.dataset, method=item["method"], split=item["split"]))
    table = manifest_table(rows, source=out_uri)
    storage.write_parquet_atomic(table, storage.join(out_uri, "manifest.parquet"))
    return table
