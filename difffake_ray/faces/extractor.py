"""One video in, its face rows out: the per-video work of the extract stage, with no Ray in it.

Every video yields at least one row. A video-level fault (missing file, unreadable, no frames)
gives one row with ``frame_index`` null and the fault as ``status``/``error``; otherwise there is
one row per face of each sampled frame, with its face track (``faces/tracking.py``), or one
``no_face`` row for a frame without a face, and ``video_status`` says whether the video had any
face at all.
"""

from __future__ import annotations

import collections
import contextlib
import time
import traceback
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np

from .. import schema
from ..config import ExtractConfig
from .codec import encode_image
from .crop import aligned_crop, crop_face, crop_window, to_crop_coordinates, transform_points
from .detectors import create_detector, largest_faces
from .landmarkers import create_landmarker
from .tracking import FaceTracks, continues, distinct_boxes
from .video import VideoError, read_sampled_frames


def _manifest_part(row: Mapping[str, Any]) -> Dict[str, Any]:
    return {c: row.get(c) for c in schema.MANIFEST_COLUMNS}


MOTION_SIDE = 320  # motion is measured on frames scaled to this longest side: compression noise averages out


def motion_frame(image: np.ndarray):
    """-> (the frame, grey and at most MOTION_SIDE a side, as float32; its scale from the frame)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, MOTION_SIDE / max(h, w))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32), scale


def window_motion(previous: Optional[np.ndarray], current: np.ndarray, box) -> Optional[float]:
    """Mean absolute grey-level difference of two frames inside ``box`` (x, y, w, h, in their
    pixels); None without a previous frame of the same size or for an empty window."""
    if previous is None or previous.shape != current.shape:
        return None
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, int(x)), max(0, int(y))
    x1, y1 = min(current.shape[1], int(np.ceil(x + w))), min(current.shape[0], int(np.ceil(y + h)))
    if x1 <= x0 or y1 <= y0:
        return None
    return float(np.mean(np.abs(current[y0:y1, x0:x1] - previous[y0:y1, x0:x1])))


def video_failure_row(row: Mapping[str, Any], status: str, error: str) -> Dict[str, Any]:
    out = schema.empty_row(schema.FACES_SCHEMA)
    out.update(_manifest_part(row))
    out.update(video_status=status, status=status, error=error)
    return out


# The version of what the extractor makes of a video (boxes, tracks, crops, motion): recorded in
# an extract output's settings, so that a rerun after a change that moves them refuses to mix rows
# of two versions in one output. Bump it with any such change; 1: the rows of session 11's code;
# 2: YuNet's boxes made square.
EXTRACTOR_VERSION = 2
# the detectors whose boxes each version moved: a bundle calibrated on faces of an older version
# is refused for those detectors only (Haar's boxes are as they were)
MOVED_BOXES = {2: ("yunet",)}


def boxes_moved_since(version: int, detector: str) -> bool:
    """Whether ``detector``'s boxes moved in a version after ``version``."""
    return any(detector in MOVED_BOXES.get(v, ()) for v in range(version + 1, EXTRACTOR_VERSION + 1))

# the steps of a video's extraction, as timed (decode: reading and converting the sampled frames)
STEPS = ("decode", "detect", "landmarks", "crop", "encode", "motion")


class StepClock:
    """Seconds spent in each named step, summed (what `bench/extract.py` and the run record report)."""

    def __init__(self):
        self.seconds: Dict[str, float] = collections.defaultdict(float)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t


class FaceExtractor:
    """Holds the detector and landmarker (loaded once per worker); ``extract(row)`` does a video.
    ``clock`` sums the seconds of each step (STEPS) over every video this extractor did."""

    def __init__(self, cfg: ExtractConfig):
        import cv2

        self.cfg = cfg
        cv2.setNumThreads(cfg.opencv_threads)
        self.detector = create_detector(
            cfg.detector, cascade=cfg.cascade, max_side=cfg.detect_max_side,
            min_face_fraction=cfg.min_face_fraction,
        )
        self.landmarker = create_landmarker(cfg.landmarker, model_path=cfg.lbf_model_path)
        self._tracks = FaceTracks(cfg.max_faces)  # the faces of the current video, by track
        self._frames_seen = 0
        self._previous_grey = None  # the previous sampled frame, small and grey: what motion compares
        self.clock = StepClock()

    def extract(self, row: Mapping[str, Any]) -> List[Dict[str, Any]]:
        uri = row.get("uri")
        base = _manifest_part(row)
        self._tracks, self._frames_seen, self._previous_grey = FaceTracks(self.cfg.max_faces), 0, None

        handling = [0.0]  # seconds inside frame_rows: what reading took beyond it is decoding

        def frame_rows(frame) -> List[Dict[str, Any]]:
            """One sampled frame -> a row per tracked face (one no_face row when it has none); the
            decoded frame is not kept (memory: one frame)."""
            started = time.perf_counter()
            out = schema.empty_row(schema.FACES_SCHEMA)
            out.update(base)
            out.update(frame_index=frame.index, timestamp=frame.timestamp,
                       frame_width=int(frame.image.shape[1]), frame_height=int(frame.image.shape[0]))
            try:
                faces = self.faces_of(frame.image)
            except Exception as exc:  # noqa: BLE001 - one bad frame is recorded, not fatal
                return [dict(out, status=schema.FRAME_NO_FACE, error=f"frame {frame.index}: {exc!r}")]
            finally:
                handling[0] += time.perf_counter() - started
            return [dict(out, **fields) for fields in faces] or [dict(out, status=schema.FRAME_NO_FACE)]

        t = time.perf_counter()
        try:
            info, per_frame = read_sampled_frames(
                uri, self.cfg.n_frames, self.cfg.frame_sampling, self.cfg.decode_threads, handle=frame_rows
            )
        except VideoError as exc:
            return [video_failure_row(row, exc.status, str(exc))]
        except Exception as exc:  # noqa: BLE001 - a per-video fault must not end the job
            return [video_failure_row(row, schema.ERROR, f"{uri}: {exc!r}\n{traceback.format_exc(limit=3)}")]
        finally:
            self.clock.seconds["decode"] += time.perf_counter() - t - handling[0]
        rows = [r for frame in per_frame for r in frame]
        for r in rows:
            r["video_frame_count"], r["source_signature"] = info.frame_count, info.signature

        any_face = any(r["status"] == schema.FRAME_OK for r in rows)
        video_status = schema.VIDEO_OK if any_face else schema.NO_FACE
        for r in rows:
            r["video_status"] = video_status
            if not any_face and r["error"] is None:
                others = (f" of its first video stream (the file has {info.video_streams}; the others are not read)"
                          if info.video_streams > 1 else "")
                r["error"] = f"{uri}: no face found in any of {len(per_frame)} sampled frames{others}"
        return rows

    def face_boxes(self, image: np.ndarray) -> np.ndarray:
        """The boxes (N, 4) of one frame's faces, at most ``max_faces``. Between full searches
        (every ``full_search_every`` sampled frames: faces that came in), each track is looked for
        near where it was; a track not found there, or a detector that cannot search a window,
        means a full search.

        Tried and taken back: following tracked faces near their boxes on every frame, with a
        coarse whole-frame search only for faces that came in. Detection cost fell from 0.96 to
        0.54-0.65 s a video, but the boxes moved and the synthetic bench's eye edits fell from
        0.901 to 0.849-0.885 (docs/benchmarks.md, extract)."""
        cfg = self.cfg
        searched = self._tracks.searched()
        due = self._frames_seen % cfg.full_search_every == 0
        self._frames_seen += 1
        if not cfg.track_faces or not searched or due:
            return self.full_search(image)
        found = []
        for t in searched:
            box = self.near(image, self._tracks.last_box[t])
            if box is None:
                # a face left or moved out of its window, or a detector that cannot search a window
                return self.full_search(image)
            found.append(box)
        # two windows may find one face: keep it once (link gives it to one track)
        return distinct_boxes(np.asarray(found))

    def full_search(self, image: np.ndarray) -> np.ndarray:
        return largest_faces(self.detector.detect(image), self.cfg.max_faces, by=self.cfg.largest_by)

    def near(self, image: np.ndarray, last: np.ndarray) -> Optional[np.ndarray]:
        """The box near ``last`` that best continues it; None when none does (or the detector cannot
        search a window)."""
        boxes = self.detector.near(image, last)
        if boxes is None:
            return None
        best = max(boxes, key=lambda b: continues(last, b), default=None)
        return None if best is None or continues(last, best) == 0 else best

    def faces_of(self, image: np.ndarray) -> List[Dict[str, Any]]:
        """The face fields of one RGB frame: a dict per tracked face, with its track."""
        step = self.clock.step
        with step("motion"):
            grey, scale = motion_frame(image)
        with step("detect"):
            boxes = self.face_boxes(image)
        out = []
        for track, box in self._tracks.link(boxes):
            fields = self.face_fields(image, box)
            if fields is not None:
                with step("motion"):
                    motion = window_motion(self._previous_grey, grey, box * scale)
                out.append(dict(fields, track=track, motion=motion))
        self._previous_grey = grey
        return out

    def face_fields(self, image: np.ndarray, box: np.ndarray) -> Optional[Dict[str, Any]]:
        """Landmarks and crop of one face box of one RGB frame (None for a degenerate box)."""
        height, width = image.shape[:2]
        size = self.cfg.crop_size
        window = crop_window(box, self.cfg.crop_scale, width, height)
        if window[2] - window[0] < 2 or window[3] - window[1] < 2:
            return None
        step = self.clock.step
        with step("landmarks"):
            points = self.landmarker.predict(image, box)
        with step("crop"):
            if self.cfg.align:
                crop, matrix, window = aligned_crop(image, points, size)
                if crop is None:
                    return None
                landmarks = transform_points(points, matrix)
            else:
                crop = crop_face(image, window, size)
                landmarks = to_crop_coordinates(points, window, size)
        with step("encode"):
            encoded = encode_image(crop, self.cfg.image_format, self.cfg.jpeg_quality)
        return {
            "status": schema.FRAME_OK,
            "box": [int(v) for v in box],
            "crop_box": [int(v) for v in window],
            "landmarks": landmarks.reshape(-1).astype(np.float32).tolist(),
            "crop": encoded,
            "crop_format": self.cfg.image_format,
        }
