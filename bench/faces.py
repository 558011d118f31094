"""Benchmark: the face pipeline on real footage (realdev), one row per face detector.

Per detector, over realdev's videos at 16 sampled frames (the extractor as extract runs it, face
tracks included, in this process: the time is one core's):

- faces found: the share of sampled frames with a face, and the videos with none;
- one identity tracked: the videos whose faces form exactly one track of 6 faces or more (every
  realdev clip shows one main person; a second long track is a second person or a false face);
- wrong faces: tracks of 6 or more faces beyond the first (false boxes kept across frames, or
  background faces), and still tracks among them (a poster, a false box on the background);
- steadiness: how much the main track's box centre (in face widths) and size (log) move beyond a
  steady motion, the second difference over three sampled frames, median per video then over
  videos (what a pair of frames sees of the detector rather than of the face);
- speed: seconds per video, and per sampled frame.

    python -m bench.faces                      # ../shared/data/realdev; haar at 640 px, yunet at 320 and 640
    python -m bench.faces --detectors haar:640

Results: bench/results/faces-realdev-<machine>.json. The data are read in place, never copied.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter, defaultdict

import numpy as np

from bench.common import result_stem, write_result

DEFAULT_REALDEV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                               "realdev")


def box_unsteadiness(boxes: np.ndarray) -> tuple:
    """(centre, size) second differences of a track's boxes (N, 4) in frame order: their medians,
    the centre's in face widths, the size's in log units (NaN under three boxes)."""
    if len(boxes) < 3:
        return float("nan"), float("nan")
    centre, size = boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:].mean(axis=1)
    moved = np.abs(centre[2:] - 2 * centre[1:-1] + centre[:-2]).max(axis=1) / size[1:-1]
    grew = np.abs(np.diff(np.log(size), 2))
    return float(np.median(moved)), float(np.median(grew))


def measure(detector: str, max_side: int, videos, frames: int, min_faces: int) -> dict:
    from difffake_ray.config import ExtractConfig
    from difffake_ray.faces.extractor import FaceExtractor
    from difffake_ray.adm.scoring import STILL_MOTION

    extractor = FaceExtractor(ExtractConfig(detector=detector, detect_max_side=max_side, n_frames=frames))
    per_video = []
    for v in videos:
        t = time.perf_counter()
        rows = extractor.extract(v)
        seconds = time.perf_counter() - t
        sampled = {r["frame_index"] for r in rows if r["frame_index"] is not None}
        with_face = {r["frame_index"] for r in rows if r["status"] == "ok"}
        tracks, motion, boxes = Counter(), defaultdict(list), defaultdict(list)
        for r in rows:
            if r["status"] == "ok":
                tracks[r["track"]] += 1
                boxes[r["track"]].append((r["frame_index"], r["box"]))
                if r["motion"] is not None:
                    motion[r["track"]].append(r["motion"])
        long_tracks = [t for t, n in tracks.items() if n >= min_faces]
        still = [t for t in long_tracks if motion[t] and np.median(motion[t]) < STILL_MOTION]
        main = max(boxes.values(), key=len, default=[])
        moved, grew = box_unsteadiness(np.array([b for _, b in sorted(main)], dtype=np.float64).reshape(-1, 4))
        per_video.append({"video_id": v["video_id"], "label": v["label"], "status": rows[0]["video_status"],
                          "sampled": len(sampled), "with_face": len(with_face), "long_tracks": len(long_tracks),
                          "still_long_tracks": len(still), "centre_unsteadiness": moved,
                          "size_unsteadiness": grew, "seconds": round(seconds, 3)})
    n_sampled = sum(p["sampled"] for p in per_video)
    return {
        "frames_with_a_face": round(sum(p["with_face"] for p in per_video) / max(n_sampled, 1), 4),
        "videos_without_a_face": [p["video_id"] for p in per_video if p["with_face"] == 0],
        "videos_one_long_track": sum(p["long_tracks"] == 1 for p in per_video),
        "videos_no_long_track": sum(p["long_tracks"] == 0 for p in per_video),
        "extra_long_tracks": sum(max(0, p["long_tracks"] - 1) for p in per_video),
        "still_long_tracks": sum(p["still_long_tracks"] for p in per_video),
        "centre_unsteadiness": round(float(np.nanmedian([p["centre_unsteadiness"] for p in per_video])), 4),
        "size_unsteadiness": round(float(np.nanmedian([p["size_unsteadiness"] for p in per_video])), 4),
        "seconds_per_video": round(float(np.mean([p["seconds"] for p in per_video])), 3),
        "seconds_per_frame": round(sum(p["seconds"] for p in per_video) / max(n_sampled, 1), 4),
        "videos": per_video,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realdev", default=DEFAULT_REALDEV)
    p.add_argument("--detectors", default="haar:640,yunet:320,yunet:640",
                   help="detector:max_side (extract.detector, extract.detect_max_side), comma-separated")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--min-faces", type=int, default=6, help="a track this long counts (score.min_faces)")
    args = p.parse_args()
    videos = [dict(r, uri=os.path.abspath(os.path.join(args.realdev, r["uri"])))
              for r in csv.DictReader(open(os.path.join(args.realdev, "manifest.csv"), encoding="utf-8"))]
    results = {}
    for spec in args.detectors.split(","):
        name, _, side = spec.partition(":")
        results[spec] = measure(name, int(side or 0), videos, args.frames, args.min_faces)
    lines = ["| detector:px | frames with a face | videos without a face | one long track | no long track | "
             "extra long tracks (still) | box centre / size unsteadiness | s / video | s / frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d, r in results.items():
        lines.append(f"| {d} | {r['frames_with_a_face']:.1%} | {len(r['videos_without_a_face'])} | "
                     f"{r['videos_one_long_track']} / {len(videos)} | {r['videos_no_long_track']} | "
                     f"{r['extra_long_tracks']} ({r['still_long_tracks']}) | {r['centre_unsteadiness']:.4f} / "
                     f"{r['size_unsteadiness']:.4f} | {r['seconds_per_video']:.2f} | "
                     f"{r['seconds_per_frame']:.3f} |")
    table = "\n".join(lines)
    print(table)
    out = write_result(result_stem("faces", "realdev"), {
        "settings": {"frames": args.frames, "min_faces": args.min_faces}, "results": results, "table_markdown": table})
    print(f"faces: {out}")


if __name__ == "__main__":
    main()
