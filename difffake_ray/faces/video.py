"""Frame sampling and decoding with PyAV.

Real corpora are H.264 with long GOPs, where seeking to a frame number costs a decode from the
previous keyframe each time; one sequential pass that converts only the sampled frames to RGB is
the cheapest way to get 40 frames of a typical clip. Decoding stops after the last sampled frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import numpy as np

from .. import schema, storage


# The most pixels a decoded frame may hold (8192 x 8192: 200 MB as RGB). Checked on the declared
# size and on every decoded frame: a stream may declare 64x64 and grow mid-way.
MAX_FRAME_PIXELS = 8192 * 8192


class VideoError(Exception):
    """A per-video fault with the status it maps to in the output."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int
    rotation: int = 0
    video_streams: int = 1  # the first is read; a note says when there are others
    signature: Optional[str] = None  # the file as read (storage.signature)


@dataclass
class DecodedFrame:
    index: int
    timestamp: float
    image: np.ndarray  # H x W x 3 RGB uint8


def sample_frame_indices(frame_count: int, n_frames: int, mode: str = "linspace") -> np.ndarray:
    """Indices of the frames to sample from a video of ``frame_count`` frames.

    ``linspace``: ``n_frames`` equally spaced frames from the first to the last (the paper);
    ``reference``: frames 0, step, 2*step ... with step = frame_count // n_frames (the reference
    code). A video shorter than ``n_frames`` gives every frame once.
    """
    if frame_count <= 0 or n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if frame_count <= n_frames:
        return np.arange(frame_count, dtype=np.int64)
    if mode == "linspace":
        return np.unique(np.round(np.linspace(0, frame_count - 1, n_frames)).astype(np.int64))
    if mode == "reference":
        step = frame_count // n_frames
        return np.arange(0, step * n_frames, step, dtype=np.int64)
    raise ValueError(f"unknown frame sampling mode {mode!r} (linspace, reference)")


def _open_container(uri: str):
    import av

    if storage.is_remote(uri):
        fh = storage.open_uri(uri, "rb")
        return av.open(fh, mode="r"), fh
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    return av.open(path, mode="r"), None


def _rotation_of(stream) -> int:
    # Phone videos carry a display rotation; PyAV exposes it on the stream's side data or metadata.
    try:
        meta = stream.metadata or {}
        if "rotate" in meta:
            return int(meta["rotate"]) % 360
    except Exception:  # noqa: BLE001 - metadata is best effort
        pass
    return 0


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, as phones record it) so faces stand
    upright for the detector."""
    quarter = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def _count_frames(container, stream) -> int:
    # Containers such as some mkv/avi carry no frame count: demux packets (no decode) to count.
    n = 0
    for packet in container.demux(stream):
        if packet.size > 0:
            n += 1
    container.seek(0)
    return n


def probe(uri: str) -> Optional[str]:
    """Raise VideoError naming why ``uri`` cannot be read, or return its ``storage.signature``
    (None over HTTP): a missing file, a symlink loop, a permission, a refused connection and
    missing credentials each say so (the last three as ``error``: they are about the environment,
    and a rerun redoes them)."""
    import errno

    try:
        fs, path = storage.url_to_fs(uri)
        if uri.startswith(("http://", "https://")):
            fs.cat_file(path, start=0, end=1)  # its info() reports a refused connection as not found
            return None
        return storage.signature(fs.info(path))
    except FileNotFoundError:
        raise VideoError(schema.MISSING, f"{uri}: file not found") from None
    except PermissionError:
        raise VideoError(schema.ERROR, f"{uri}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise VideoError(schema.UNREADABLE, f"{uri}: a loop of symbolic links") from None
        if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionError):
            raise VideoError(schema.ERROR, f"{uri}: connection refused") from None
        cause = exc
    except Exception as exc:  # noqa: BLE001 - remote filesystems raise their own types
        cause = exc
    text = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    if "credential" in text.lower() or type(cause).__name__ in ("NoCredentialsError", "DefaultCredentialsError"):
        raise VideoError(schema.ERROR, f"{uri}: no credentials to read it ({text})")
    if "connect" in text.lower() or "refused" in text.lower():
        raise VideoError(schema.ERROR, f"{uri}: cannot connect ({text})")
    raise VideoError(schema.ERROR, f"{uri}: cannot be read ({text})")


def read_sampled_frames(
    uri: str, n_frames: int, mode: str = "linspace", threads: int = 1,
    handle: Optional[Callable[[DecodedFrame], Any]] = None,
) -> tuple:
    """Decode the sampled frames of one video.

    Returns ``(info, frames)`` with ``frames`` a list of DecodedFrame in index order, or of what
    ``handle(frame)`` returned for each: with a handler, each frame is dropped as soon as it is
    handled, so memory holds one decoded frame whatever ``n_frames`` is. Raises
    VideoError(MISSING | UNREADABLE | NO_FRAMES) for a video-level fault.
    """
    import av

    signature = probe(uri)
    fh = None
    try:
        container, fh = _open_container(uri)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(schema.UNREADABLE, f"{uri}: cannot open as a video ({exc})") from None
    try:
        if not container.streams.video:
            raise VideoError(schema.UNREADABLE, f"{uri}: no video stream in the file")
        stream = container.streams.video[0]
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise VideoError(schema.UNREADABLE, f"{uri}: declared frame size {width}x{height} is empty")
        if width * height > MAX_FRAME_PIXELS:
            raise VideoError(schema.UNREADABLE, f"{uri}: declared frame size {width}x{height} is too large")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        frame_count = int(stream.frames or 0)
        try:
            if frame_count <= 0:
                frame_count = _count_frames(container, stream)
        except av.error.FFmpegError as exc:
            raise VideoError(schema.UNREADABLE, f"{uri}: cannot demux ({exc})") from None
        info = VideoInfo(frame_count, fps, width, height, _rotation_of(stream), len(container.streams.video), signature)
        if frame_count <= 0:
            raise VideoError(schema.NO_FRAMES, f"{uri}: the video holds no frames")
        wanted = sample_frame_indices(frame_count, n_frames, mode)
        # threading is fixed once, before the codec opens (a second pass cannot change it)
        stream.thread_type = "AUTO" if threads > 1 else "SLICE"
        stream.codec_context.thread_count = max(1, threads)
        handle = handle or (lambda frame: frame)
        ranks = _display_ranks(container, stream, frame_count) if threads == 1 and fh is None else None
        if ranks is not None:
            frames, decoded, shape = _decode_skipping(container, stream, wanted, handle, ranks, uri)
        else:
            frames, decoded, shape = decode_indices(container, stream, wanted, handle, uri)
        if len(frames) < len(wanted) and decoded > 0:
            # The container over-declared its frame count (a truncated file): sample again over
            # the frames that really decode, so the sample stays equally spaced.
            info.frame_count = decoded
            container.seek(0)
            wanted = sample_frame_indices(decoded, n_frames, mode)
            frames, _, shape = decode_indices(container, stream, wanted, handle, uri)
        if not frames:
            raise VideoError(schema.NO_FRAMES, f"{uri}: no frame could be decoded")
        if shape != (height, width):  # turned upright: report what is analysed
            info.height, info.width = shape
        return info, frames
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise VideoError(schema.UNREADABLE, f"{uri}: decoding failed ({exc})") from None
    finally:
        container.close()
        if fh is not None:
            fh.close()


def _checked(frame, index: Optional[int], uri: str) -> None:
    """Refuse a frame over MAX_FRAME_PIXELS before it is converted, kept or handled."""
    if frame.width * frame.height > MAX_FRAME_PIXELS:
        raise VideoError(schema.UNREADABLE, f"{uri}: frame {index} is {frame.width}x{frame.height}, over "
                                            f"the {MAX_FRAME_PIXELS} pixels a frame may hold")


def _handled(frame, index: int, time_base: float, handle: Callable[[DecodedFrame], Any]) -> tuple:
    """A wanted frame, upright RGB, handed to ``handle`` -> (what it returned, (height, width))."""
    img = upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
    ts = float(frame.pts * time_base) if frame.pts is not None and time_base else float("nan")
    return handle(DecodedFrame(index, ts, img)), img.shape[:2]


def decode_indices(container, stream, wanted: np.ndarray, handle: Callable[[DecodedFrame], Any],
                   uri: str = "") -> tuple:
    """One sequential pass; only the wanted frames are converted to RGB and handed to ``handle``.

    Returns ``(handled, n_decoded, (height, width) of the frames)``: n_decoded counts frames
    decoded before the pass stopped (at the last wanted frame, the end of the stream, or a decode
    error in a truncated file).
    """
    import av

    targets = set(int(i) for i in wanted)
    last = int(wanted[-1]) if len(wanted) else -1
    out: List[Any] = []
    index = -1
    shape = None
    tb = float(stream.time_base) if stream.time_base else 0.0
    try:
        for frame in container.decode(stream):
            index += 1
            _checked(frame, index, uri)
            if index in targets:
                handled, size = _handled(frame, index, tb, handle)
                shape = shape or size
                out.append(handled)
            if index >= last:
                break
    except av.error.FFmpegError:
        pass  # a truncated file ends early: keep what decoded
    return out, index + 1, shape


def _display_ranks(container, stream, frame_count: int) -> Optional[dict]:
    """Each packet's presentation time -> its frame's index in display order, from one demux pass
    (no decoding); None where that mapping cannot be trusted (a packet without a time, two with
    the same one, packets to be discarded, a count that differs from the declared one)."""
    import av

    times = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None or packet.is_discard:
                return None
            times.append(int(packet.pts))
    except av.error.FFmpegError:
        return None
    finally:
        container.seek(0)
    if len(times) != frame_count or len(set(times)) != len(times):
        return None
    return {t: i for i, t in enumerate(sorted(times))}


def _decode_skipping(container, stream, wanted: np.ndarray, handle: Callable[[DecodedFrame], Any],
                     ranks: dict, uri: str = "") -> tuple:
    """As ``decode_indices``, but a packet whose frame is not wanted is sent to the decoder with
    non-reference frames skipped: no other frame is predicted from those, so every wanted frame
    decodes exactly as in a full pass, and about half of an H.264 stream's frames are never
    decoded (x264's B-frames). Single-threaded decoding only: with frame threads the skip setting
    would not follow the packets."""
    import av

    targets = set(int(i) for i in wanted)
    out: List[Any] = []
    reached, shape = -1, None
    tb = float(stream.time_base) if stream.time_base else 0.0
    codec = stream.codec_context
    try:
        for packet in container.demux(stream):
            if packet.size:
                rank = ranks.get(int(packet.pts), -1)
                reached = max(reached, rank)
                codec.skip_frame = "DEFAULT" if rank in targets else "NONREF"
            for frame in codec.decode(packet):
                index = ranks.get(frame.pts)
                _checked(frame, index, uri)
                if index not in targets:
                    continue
                handled, size = _handled(frame, index, tb, handle)
                shape = shape or size
                out.append((index, handled))
                targets.discard(index)
            if not targets:
                break
    except av.error.FFmpegError:
        pass  # a truncated file ends early: keep what decoded
    finally:
        codec.skip_frame = "DEFAULT"
    out.sort(key=lambda pair: pair[0])
    return [handled for _, handled in out], reached + 1, shape
