"""detect: one video in -> a verdict with its evidence out, from a bundle (``pipeline/bundle.py``).

``run_detect`` runs extract,
embed and score in this process (no Ray: for a handful of videos its start-up would cost more
than the work; the batch path is for corpora), with the same code as the batch stages, so a
video gets the same score either way.
"""

from __future__ import annotations

import posixpath
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from .. import schema, storage
from ..bundle import Detector
from ..calibration import domain_distance, real_percentile, verdict


def _video_row(uri: str) -> Dict[str, Any]:
    name = posixpath.basename(uri.rstrip("/"))
    return dict(video_id=name, uri=uri, label="unknown", dataset="detect", method="unknown", split="unknown")


def _as_text(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows whose names Arrow can hold: a file name that is not UTF-8 is written with its odd bytes
    escaped (the file itself was read under its real name)."""
    from ..text import utf8_safe

    return [dict(r, **{k: utf8_safe(r[k]) for k in ("video_id", "uri", "error") if isinstance(r.get(k), str)})
            for r in rows]


# statuses with a score that is no verdict: shown, never called real or fake
NO_VERDICT = (schema.LOW_EVIDENCE, schema.STATIC, schema.OUTSIDE_DOMAIN)


def detect_video(detector: Detector, uri: str, fpr: float = 0.01) -> Dict[str, Any]:
    """One video -> {"video", "status", "score", "real_percentile", "verdict", ..., "seconds": {...}}
    plus, under "_evidence", what a report draws (faces, pairs and their scores)."""
    from ..adm.scoring import score_videos, tracks_by_video

    times: Dict[str, float] = {}
    t = time.perf_counter()
    rows = _as_text(detector.extractor.extract(_video_row(uri)))
    times["decode_and_detect"] = time.perf_counter() - t
    out: Dict[str, Any] = {"video": uri, "status": rows[0]["video_status"], "error": None, "score": None,
                           "real_percentile": None, "verdict": None, "fpr": fpr, "n_faces": 0, "n_pairs": 0,
                           "track": None, "n_tracks": 0, "calibration_note": detector.calibration_note()}
    if out["status"] != schema.VIDEO_OK:
        out["error"] = rows[0]["error"]
        out["seconds"] = {k: round(v, 3) for k, v in times.items()}
        return out
    faces = pa.Table.from_pylist(rows, schema=schema.FACES_SCHEMA)
    t = time.perf_counter()
    detector.wait_until_loaded()  # the first video: the backbone may still be loading in its worker
    times["wait_for_backbone"] = time.perf_counter() - t
    t = time.perf_counter()
    emb = detector.embed_faces(faces)
    times["embed"] = time.perf_counter() - t
    t = time.perf_counter()
    s = detector.score_settings  # the batch path's scoring, statuses included, with the pairs kept
    tracks = tracks_by_video(emb)
    row = score_videos(emb, detector.model, detector.model_meta, s["pairs_per_video"], s["min_frame_gap"], s["seed"],
                       keep_pairs=True, min_faces=s["min_faces"], tracks=tracks, pairing=s["pairing"])[0]
    out.update({k: row[k] for k in ("status", "error", "score", "n_faces", "n_pairs", "track", "n_tracks")})
    domain = (detector.calibration or {}).get("domain")
    if row["status"] == schema.VIDEO_OK and domain:
        faces_of_track = tracks[row["video_id"]][row["track"]].embeddings
        out["domain_distance"] = round(domain_distance(faces_of_track.mean(axis=0), domain), 3)
        if out["domain_distance"] > domain["limit"]:
            out.update(status=schema.OUTSIDE_DOMAIN, error=(
                f"{uri}: its faces lie outside what the bundle was calibrated on (distance {out['domain_distance']:.2f}, "
                f"beyond {domain['limit']:.2f}; its {len(domain['loo_distances'])} calibration videos lie at "
                f"{np.median(domain['loo_distances']):.2f} in the median): no calibrated verdict; calibrate a bundle "
                f"on real videos of this kind of footage"))
    if out["status"] == schema.VIDEO_OK and detector.calibration:
        out.update(real_percentile=round(real_percentile(row["score"], detector.calibration), 2),
                   verdict=verdict(row["score"], detector.calibration, fpr),
                   threshold=detector.calibration["thresholds"][f"{fpr:g}"])
    if "pair_detail" in row:
        track = row["track"]
        out["_evidence"] = dict(row["pair_detail"],
                                crops={r["frame_index"]: r["crop"] for r in rows
                                       if r["status"] == schema.FRAME_OK and (r["track"] or 0) == track},
                                timestamps={r["frame_index"]: r["timestamp"] for r in rows})
    times["score"] = time.perf_counter() - t
    out["seconds"] = {k: round(v, 3) for k, v in times.items()}
    return out


def report_stem(uri: str) -> str:
    """A report's file name stem for ``uri``: its base name made safe, and a hash of the whole URI,
    so two inputs of one base name (a/x.mp4 and b/x.mp4, x.mp4 and x.mov) never share a report."""
    import hashlib
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", posixpath.splitext(posixpath.basename(uri.rstrip("/")))[0])[:80]
    digest = hashlib.sha1(uri.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{stem or 'video'}-{digest}"


def write_report(result: Dict[str, Any], out_dir: str, n_pairs_shown: int = 3) -> List[str]:
    """Per video: the most anomalous frame pairs (the two crops side by side, with the pair score)
    and a timeline of per-frame anomaly (mean score of the pairs a frame is in). -> files written."""
    from ..faces.codec import decode_image
    from ..figures import pyplot, write_figure
    from ..text import printable

    plt = pyplot()

    ev = result.get("_evidence")
    if not ev:
        return []
    stem, name = report_stem(result["video"]), printable(posixpath.basename(result["video"]))
    frames, pairs, ll = ev["frames"], ev["pairs"], ev["scores"]
    worst = np.argsort(ll)[:n_pairs_shown]
    fig, axes = plt.subplots(len(worst), 2, figsize=(5, 2.6 * len(worst)), squeeze=False)
    for row, k in enumerate(worst):
        for col in (0, 1):
            f = int(frames[pairs[k, col]])
            axes[row, col].imshow(decode_image(ev["crops"][f]))
            axes[row, col].set_title(f"frame {f}", fontsize=8)
            axes[row, col].axis("off")
        axes[row, 0].text(0, -0.25, f"pair score {ll[k]:.1f}", transform=axes[row, 0].transAxes, fontsize=9)
    fig.suptitle(f"{name}: most anomalous pairs of face track {result.get('track')} (video score "
                 f"{result['score']:.1f}, {result.get('verdict') or result['status']})", fontsize=9)
    fig.tight_layout()
    pairs_png = storage.join(out_dir, f"{stem}_pairs.png")
    write_figure(pairs_png, fig, dpi=100, tight=False)
    per_frame = {}
    for (a, b), s in zip(pairs, ll):
        for pos in (a, b):
            per_frame.setdefault(int(frames[pos]), []).append(float(s))
    xs = sorted(per_frame)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    times = [ev["timestamps"].get(f, f) for f in xs]
    ax.plot(times, [np.mean(per_frame[f]) for f in xs], "o-", label="mean pair score of the frame")
    if result.get("threshold") is not None:
        ax.axhline(result["threshold"], color="red", ls="--", label=f"video threshold ({result['fpr']:.0%} FPR)")
    ax.set(xlabel="time (s)", ylabel="pair score (higher = more real)", title=f"{name}: anomaly over time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    timeline_png = storage.join(out_dir, f"{stem}_timeline.png")
    write_figure(timeline_png, fig, dpi=100, tight=False)
    return [pairs_png, timeline_png]


def check_report_dir(report_dir: str) -> None:
    """Fail before any video when the report folder cannot be written (one line naming it)."""
    probe = storage.join(report_dir, f"{storage.TEMP_PREFIX}write-check")
    try:
        storage.write_bytes_atomic(probe, b"")
        storage.remove(probe)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--report {report_dir}: cannot be written ({getattr(exc, 'strerror', None) or exc})") from None


def iter_detect(videos: Sequence[str], detector_uri: str, fpr: float = 0.01,
                report_dir: Optional[str] = None) -> Iterator[Dict[str, Any]]:
    """Each video of ``videos`` -> its result (no ``_evidence``) as soon as it is ready, its report
    written when asked: a caller shows the first verdict without waiting for the last video. The
    false-positive rate and the report folder are checked before any video."""
    if not 0 < fpr < 1:
        raise ValueError(f"--fpr {fpr:g}: a false-positive rate is between 0 and 1")
    if report_dir:
        report_dir = storage.absolute(report_dir)
        check_report_dir(report_dir)
    t = time.perf_counter()
    with Detector(detector_uri) as detector:
        detector.check_fpr(fpr)
        load_s = time.perf_counter() - t
        for i, uri in enumerate(videos):
            result = detect_video(detector, uri, fpr)
            if i == 0:
                result["seconds"]["load_detector"] = round(load_s, 3)
            if report_dir:
                result["report"] = write_report(result, report_dir)
            result.pop("_evidence", None)
            yield result


def run_detect(videos: Sequence[str], detector_uri: str, fpr: float = 0.01,
               report_dir: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every video of ``videos`` -> its result (``iter_detect``, collected)."""
    return list(iter_detect(videos, detector_uri, fpr, report_dir))
