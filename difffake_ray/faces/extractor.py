"""One video in, its face rows out: the per-video work of the extract stage, with no Ray in it.

Every video yields at least one row. A video-level fault (missing file, unreadable, no frames)
gives one row with ``frame_index`` null and the fault as ``status``/``error``; otherwise there is
one row per sampled frame, ``status`` ``ok`` or ``no_face``, and ``video_status`` says whether the
video had any face at all.
"""

from __future__ import annotations

import traceback
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .. import schema
from ..config import ExtractConfig
from .codec import encode_image
from .crop import crop_face, crop_window, to_crop_coordinates
from .detectors import create_detector, detect_near, largest_face
from .landmarkers import create_landmarker
from .video import VideoError, read_sampled_frames


def _manifest_part(row: Mapping[str, Any]) -> Dict[str, Any]:
    return {c: row.get(c) for c in schema.MANIFEST_COLUMNS}


def video_failure_row(row: Mapping[str, Any], status: str, error: str) -> Dict[str, Any]:
    out = schema.empty_row(schema.FACES_SCHEMA)
    out.update(_manifest_part(row))
    out.update(video_status=status, status=status, error=error)
    return out


class FaceExtractor:
    """Holds the detector and landmarker (loaded once per worker); ``extract(row)`` does a video."""

    def __init__(self, cfg: ExtractConfig):
        import cv2

        self.cfg = cfg
        cv2.setNumThreads(cfg.opencv_threads)
        self.detector = create_detector(
            cfg.detector, cascade=cfg.cascade, max_side=cfg.detect_max_side,
            min_face_fraction=cfg.min_face_fraction,
        )
        self.landmarker = create_landmarker(cfg.landmarker, model_path=cfg.lbf_model_path)
        # the face box of the previous sampled frame of the current video (search prior)
        self._previous_box = None

    def extract(self, row: Mapping[str, Any]) -> List[Dict[str, Any]]:
        uri = row.get("uri")
        base = _manifest_part(row)
        self._previous_box = None

        def frame_row(frame) -> Dict[str, Any]:
            """One sampled frame -> its row; the decoded frame is not kept (memory: one frame)."""
            out = schema.empty_row(schema.FACES_SCHEMA)
            out.update(base)
            out.update(frame_index=frame.index, timestamp=frame.timestamp,
                       frame_width=int(frame.image.shape[1]), frame_height=int(frame.image.shape[0]))
            try:
                out.update(self.face_fields(frame.image))
            except Exception as exc:  # noqa: BLE001 - one bad frame is recorded, not fatal
                out.update(status=schema.FRAME_NO_FACE, error=f"frame {frame.index}: {exc!r}")
            return out

        try:
            info, rows = read_sampled_frames(
                uri, self.cfg.n_frames, self.cfg.frame_sampling, self.cfg.decode_threads, handle=frame_row
            )
        except VideoError as exc:
            return [video_failure_row(row, exc.status, str(exc))]
        except Exception as exc:  # noqa: BLE001 - a per-video fault must not end the job
            return [video_failure_row(row, schema.ERROR, f"{uri}: {exc!r}\n{traceback.format_exc(limit=3)}")]
        for r in rows:
            r["video_frame_count"] = info.frame_count

        any_face = any(r["status"] == schema.FRAME_OK for r in rows)
        video_status = schema.VIDEO_OK if any_face else schema.NO_FACE
        for r in rows:
            r["video_status"] = video_status
            if not any_face and r["error"] is None:
                others = (f" of its first video stream (the file has {info.video_streams}; the others are not read)"
                          if info.video_streams > 1 else "")
                r["error"] = f"{uri}: no face found in any of {len(rows)} sampled frames{others}"
        return rows

    def face_fields(self, image: np.ndarray) -> Dict[str, Any]:
        """Detect, landmark and crop the largest face of one RGB frame."""
        box = None
        previous = self._previous_box
        if self.cfg.track_faces and previous is not None and hasattr(self.detector, "classifier"):
            box = largest_face(detect_near(self.detector, image, previous), by=self.cfg.largest_by)
        if box is None:
            box = largest_face(self.detector.detect(image), by=self.cfg.largest_by)
        self._previous_box = box
        if box is None:
            return {"status": schema.FRAME_NO_FACE}
        height, width = image.shape[:2]
        window = crop_window(box, self.cfg.crop_scale, width, height)
        if window[2] - window[0] < 2 or window[3] - window[1] < 2:
            return {"status": schema.FRAME_NO_FACE, "error": f"degenerate face box {box.tolist()}"}
        points = self.landmarker.predict(image, box)
        crop = crop_face(image, window, self.cfg.crop_size)
        landmarks = to_crop_coordinates(points, window, self.cfg.crop_size)
        return {
            "status": schema.FRAME_OK,
            "box": [int(v) for v in box],
            "crop_box": [int(v) for v in window],
            "landmarks": landmarks.reshape(-1).astype(np.float32).tolist(),
            "crop": encode_image(crop, self.cfg.image_format, self.cfg.jpeg_quality),
            "crop_format": self.cfg.image_format,
        }


def extract_video(row: Mapping[str, Any], cfg: Optional[ExtractConfig] = None) -> List[Dict[str, Any]]:
    """Convenience for one-off use; pipelines keep one FaceExtractor per worker."""
    return FaceExtractor(cfg or ExtractConfig()).extract(row)
