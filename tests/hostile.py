"""A corpus of hostile inputs: the broken files a scoring job over millions of videos will meet.

``make_hostile_corpus(out)`` writes each case under ``out/hostile/`` and returns manifest rows (plus
a row whose file does not exist). Every case must end as a row with a status and an error naming
the file, never a crash: the tests run it through every stage mixed into a normal corpus.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from typing import Callable, Dict, List

import numpy as np

from difffake_ray.datasets.synthetic import render_real, write_video

# case name -> what the file is (documentation for people reading test failures)
CASES: Dict[str, str] = {
    "zero_bytes.mp4": "an empty file",
    "truncated_10.mp4": "an H.264 mp4 cut at 10% of its bytes",
    "truncated_50.mp4": "cut at 50%",
    "truncated_90.mp4": "cut at 90%",
    "faststart_truncated_50.mp4": "moov-first mp4 cut at 50%: frames up to the cut decode",
    "wrong_extension.avi": "a valid mp4 named .avi",
    "photo_renamed.mp4": "a JPEG renamed .mp4",
    "random_bytes.mp4": "64 KiB of random bytes",
    "one_frame.mp4": "a video of a single frame",
    "declared_0x0.mp4": "a valid video whose headers declare 0x0",
    "declared_8000x8000.mp4": "a valid video whose headers declare 8000x8000",
    "variable_frame_rate.mp4": "irregular timestamps",
    "rotated_90.mp4": "frames stored sideways with a 90-degree display rotation (phone video)",
    "vidéo réelle 名前 with spaces.mp4": "a path with spaces and non-ASCII characters",
}
MISSING_CASE = "does_not_exist.mp4"


def _frames(seed: int, n: int, w: int = 320, h: int = 240) -> List[np.ndarray]:
    return render_real(np.random.default_rng(seed), w, h, n)


def _encode_with_pts(path: str, frames: List[np.ndarray], pts_ms: List[int], rotate: int = 0,
                     faststart: bool = False) -> None:
    import av

    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(path, mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)  # millisecond timestamps, any spacing
        if rotate:  # frames stored turned clockwise; the display matrix turns them back
            stream.set_display_rotation(rotate)
            frames = [np.ascontiguousarray(np.rot90(f, -rotate // 90)) for f in frames]
        for img, pts in zip(frames, pts_ms):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _patch_declared_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame size in the mp4 headers (tkhd and the avc1 sample entry); the H.264
    stream itself keeps its real size."""
    out = bytearray(data)
    i = out.find(b"tkhd")
    if i > 0:  # width/height are the last 8 bytes of the tkhd box, 16.16 fixed point
        size = struct.unpack(">I", out[i - 4:i])[0]
        end = i - 4 + size
        out[end - 8:end] = struct.pack(">II", width << 16, height << 16)
    j = out.find(b"avc1")
    if j > 0:  # avc1: 6 reserved + 2 index + 16 predefined/reserved, then width, height (16 bit)
        k = j + 4 + 6 + 2 + 16
        out[k:k + 4] = struct.pack(">HH", width & 0xFFFF, height & 0xFFFF)
    return bytes(out)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def make_hostile_corpus(out: str, seed: int = 0) -> List[Dict[str, str]]:
    """Write every case under ``out/hostile`` (local folder). Returns manifest rows."""
    import cv2

    folder = os.path.join(out, "hostile")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    p = lambda name: os.path.join(folder, name)  # noqa: E731

    good = p("_source.mp4")
    write_video(_frames(seed, 30), good)
    with open(good, "rb") as fh:
        video = fh.read()
    os.remove(good)
    _encode_with_pts(p("_faststart.mp4"), _frames(seed + 1, 30), [40 * i for i in range(30)], faststart=True)
    with open(p("_faststart.mp4"), "rb") as fh:
        faststart = fh.read()
    os.remove(p("_faststart.mp4"))

    makers: Dict[str, Callable[[str], None]] = {
        "zero_bytes.mp4": lambda f: _write(f, b""),
        "truncated_10.mp4": lambda f: _write(f, video[: len(video) // 10]),
        "truncated_50.mp4": lambda f: _write(f, video[: len(video) // 2]),
        "truncated_90.mp4": lambda f: _write(f, video[: len(video) * 9 // 10]),
        "faststart_truncated_50.mp4": lambda f: _write(f, faststart[: len(faststart) // 2]),
        "wrong_extension.avi": lambda f: _write(f, video),
        "photo_renamed.mp4": lambda f: _write(
            f, cv2.imencode(".jpg", cv2.cvtColor(_frames(seed + 2, 1)[0], cv2.COLOR_RGB2BGR))[1].tobytes()),
        "random_bytes.mp4": lambda f: _write(f, rng.integers(0, 256, 65536, dtype=np.uint8).tobytes()),
        "one_frame.mp4": lambda f: write_video(_frames(seed + 3, 1), f),
        "declared_0x0.mp4": lambda f: _write(f, _patch_declared_size(video, 0, 0)),
        "declared_8000x8000.mp4": lambda f: _write(f, _patch_declared_size(video, 8000, 8000)),
        "variable_frame_rate.mp4": lambda f: _encode_with_pts(
            f, _frames(seed + 4, 30), list(np.cumsum(rng.integers(10, 120, 30)) - 10)),
        "rotated_90.mp4": lambda f: _encode_with_pts(f, _frames(seed + 5, 30), [40 * i for i in range(30)], rotate=90),
        "vidéo réelle 名前 with spaces.mp4": lambda f: write_video(_frames(seed + 6, 30), f),
    }
    rows = []
    for name, make in makers.items():
        make(p(name))
        rows.append(dict(video_id=f"hostile/{name}", uri=p(name), label="real" if "réelle" in name else "fake",
                         dataset="hostile", method="hostile", split="test"))
    rows.append(dict(video_id=f"hostile/{MISSING_CASE}", uri=p(MISSING_CASE), label="fake", dataset="hostile",
                     method="hostile", split="test"))
    return rows
