"""Face tracks: the faces of a video's sampled frames linked into one track per person, so that
each person's frames are paired with each other only, and a face in the background (a poster, a
second person) is a track of its own rather than the "largest face" of some frames.

Pure functions on boxes (x, y, w, h); the extractor feeds it each sampled frame's detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np


def iou(a, b) -> float:
    """Intersection over union of two boxes (x, y, w, h)."""
    ax0, ay0, aw, ah = (float(v) for v in a)
    bx0, by0, bw, bh = (float(v) for v in b)
    w = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    h = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    inter = max(0.0, w) * max(0.0, h)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def continues(track_box, box, min_iou: float = 0.2) -> float:
    """How well ``box`` continues a track last seen at ``track_box``, 0 when it does not: their
    IoU when at least ``min_iou``; for a face that moved further between two sampled frames, a
    small credit when its centre moved less than a face width and its size changed under 1.5x."""
    overlap = iou(track_box, box)
    if overlap >= min_iou:
        return overlap
    tx, ty, tw, th = (float(v) for v in track_box)
    bx, by, bw, bh = (float(v) for v in box)
    moved = np.hypot(tx + tw / 2 - bx - bw / 2, ty + th / 2 - by - bh / 2)
    ratio = max(bw * bh, 1.0) / max(tw * th, 1.0)
    return 0.01 if moved < max(tw, th, 1.0) and 1 / 1.5 <= ratio <= 1.5 else 0.0


def distinct_boxes(boxes: np.ndarray, max_iou: float = 0.5) -> np.ndarray:
    """``boxes`` (N, 4) without the ones that overlap an earlier box by more than ``max_iou``: one
    face found twice (two tracks' search windows over it) is kept once."""
    kept: List[np.ndarray] = []
    for b in boxes:
        if all(iou(b, k) <= max_iou for k in kept):
            kept.append(b)
    return np.asarray(kept).reshape(-1, 4)


@dataclass
class FaceTracks:
    """Tracks of one video. ``link(boxes)`` assigns one frame's boxes to tracks (greedy, best link
    first) and opens a track for each box left, up to ``max_tracks`` a video; -> [(track, box)]."""

    max_tracks: int = 4
    last_box: List[np.ndarray] = field(default_factory=list)  # per track: where it was last seen
    misses: List[int] = field(default_factory=list)  # per track: frames since it was last seen

    def searched(self, lost_after: int = 2) -> List[int]:
        """The tracks worth looking for near their last box: those seen in the last ``lost_after``
        frames (a face that left is found again, if it comes back, by a full search)."""
        return [t for t, m in enumerate(self.misses) if m < lost_after]

    def link(self, boxes) -> List[Tuple[int, np.ndarray]]:
        boxes = [np.asarray(b) for b in boxes]
        candidates = sorted(((continues(tb, b), t, i) for t, tb in enumerate(self.last_box)
                             for i, b in enumerate(boxes)), reverse=True)
        taken_tracks, taken_boxes, out = set(), set(), []
        for score, t, i in candidates:
            if score == 0 or t in taken_tracks or i in taken_boxes:
                continue
            taken_tracks.add(t)
            taken_boxes.add(i)
            out.append((t, boxes[i]))
        # new faces, largest first, while the video has room for tracks
        for i in sorted(set(range(len(boxes))) - taken_boxes, key=lambda i: -int(boxes[i][2]) * int(boxes[i][3])):
            if len(self.last_box) >= self.max_tracks:
                break
            self.last_box.append(boxes[i])
            self.misses.append(0)
            out.append((len(self.last_box) - 1, boxes[i]))
        seen = {t for t, _ in out}
        self.misses = [0 if t in seen else m + 1 for t, m in enumerate(self.misses)]
        for t, b in out:
            self.last_box[t] = b
        return sorted(out, key=lambda tb: tb[0])
