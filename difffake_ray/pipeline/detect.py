"""bundle and detect: a portable detector, and one video in -> a verdict with its evidence out.

``run_bundle`` packs a backbone and an anomaly model (``bundle.py``) and calibrates it on the
real videos of an embeddings folder that neither model has seen. ``run_detect`` runs extract,
embed and score in this process (no Ray: for a handful of videos its start-up would cost more
than the work; the batch path is for corpora), with the same code as the batch stages, so a
video gets the same score either way.
"""

from __future__ import annotations

import collections
import posixpath
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from .. import schema, storage
from ..bundle import MIN_CALIBRATION_REALS, BundleError, Detector, write_bundle
from ..calibration import calibrate, domain_distance, domain_reference, real_percentile, verdict
from ..config import Config


class UnrecordedError(ValueError):
    """A bundle part whose record of what it saw, or what made it, is missing: refused unless asked."""


def check_parts_belong(backbone_uri: str, model_uri: str, calibrate_uri: Optional[str],
                       allow_unrecorded: bool) -> List[str]:
    """Refuse parts that do not belong together: an anomaly model fitted on another backbone's
    embeddings, calibration embeddings from another backbone. A part whose record is missing
    (which backbone made the embeddings, which videos a model saw) is refused too unless
    ``allow_unrecorded``: calibration would then count those videos as held out. -> the notes
    that a bundle made with ``allow_unrecorded`` carries."""
    from ..adm.persistence import META_FILE
    from ..backbone import fingerprint, load_embedder_file
    from ..runtime import FITTED_VIDEOS, TRAINED_VIDEOS, read_run_record

    mine = fingerprint(backbone_uri)
    try:  # its record is all this needs: write_bundle loads and checks the model itself
        meta = storage.read_json(storage.join(model_uri, META_FILE))
    except FileNotFoundError:
        raise FileNotFoundError(f"{model_uri}: no {META_FILE} (write one with `python cli.py fit`)") from None
    unrecorded: List[str] = []
    fitted_on = meta.get("backbone_fingerprint")
    if fitted_on and fitted_on != mine:
        raise BundleError(f"{model_uri} was fitted on embeddings of backbone {fitted_on}; {backbone_uri} is {mine}: "
                          f"bundle the backbone that made them")
    if not fitted_on:
        unrecorded.append(f"{model_uri}: no record of the backbone its embeddings came from")
    if calibrate_uri:
        try:
            made_by = read_run_record(calibrate_uri).get("backbone_fingerprint")
        except (FileNotFoundError, ValueError):
            made_by = None
        if made_by and made_by != mine:
            raise BundleError(f"{calibrate_uri} holds embeddings of backbone {made_by}; {backbone_uri} is {mine}: "
                              f"calibrate on embeddings of the bundled backbone")
        if not made_by:
            unrecorded.append(f"{calibrate_uri}: no run record naming the backbone of its embeddings")
        if not storage.exists(storage.join(model_uri, FITTED_VIDEOS)):
            unrecorded.append(f"{model_uri}: no {FITTED_VIDEOS} (the videos it was fitted on)")
        untrained = load_embedder_file(backbone_uri)["meta"].get("epoch", 0) is None  # `cli.py pretrained`
        if not untrained and not storage.exists(storage.join(posixpath.dirname(backbone_uri), TRAINED_VIDEOS)):
            unrecorded.append(f"{backbone_uri}: no {TRAINED_VIDEOS} beside it (the videos it was trained on)")
    if unrecorded and not allow_unrecorded:
        raise UnrecordedError(f"bundle: {unrecorded[0]}" + (f" (and {len(unrecorded) - 1} more)" if len(unrecorded) > 1
                              else "") + "; calibration could count seen videos as held out. Give the folders "
                              "their run records, or --allow-unrecorded to bundle anyway (the bundle says so)")
    return unrecorded


def calibration_footage(datasets: Dict[str, int]) -> Dict[str, Any]:
    """What a calibration's real videos were: how many of each dataset, and whether all of them come
    from the project's synthetic generator (whose manifests name their dataset "synthetic")."""
    from ..config import CorpusConfig

    return {"real_videos_by_dataset": datasets,
            "synthetic": bool(datasets) and set(datasets) == {CorpusConfig().dataset}}


def held_out_scores(emb_uri: str, model_uri: str, backbone_uri: str, cfg: Config) -> Dict[str, Any]:
    """Scores of the labelled videos of ``emb_uri`` that neither the anomaly model was fitted on
    nor the backbone trained on (their records beside each model), read one batch at a time."""
    import pyarrow.dataset as pads

    from ..adm.persistence import load_model
    from ..runtime import FITTED_VIDEOS, TRAINED_VIDEOS, read_seen_videos
    from ..adm.scoring import score_videos, tracks_by_video

    model, meta = load_model(model_uri)
    seen = set(read_seen_videos(model_uri, FITTED_VIDEOS) or ())
    seen |= set(read_seen_videos(posixpath.dirname(backbone_uri), TRAINED_VIDEOS) or ())
    if not storage.list_data_files(emb_uri):
        raise ValueError(f"{emb_uri}: no embeddings to calibrate on")
    names = storage.parquet_dataset(emb_uri).schema.names
    if "embedding" not in names:
        raise ValueError(f"{emb_uri}: holds no embedding column (a faces folder? run `cli.py embed` on it first); "
                         f"--calibrate takes the output of embed")
    scores: Dict[str, List[float]] = {"real": [], "fake": []}
    real_embeddings, datasets = [], collections.Counter()
    left_out = 0
    s = cfg.score
    for _, table in storage.scan_parts(emb_uri, filter=pads.field("label").isin(["real", "fake"])):
        tracks = tracks_by_video(table)
        for row in score_videos(table, model, meta, s.pairs_per_video, s.min_frame_gap, s.seed,
                                min_faces=s.min_faces, tracks=tracks, pairing=s.pairing):
            if row["status"] != schema.VIDEO_OK:
                continue
            if row["video_id"] in seen:
                left_out += 1
                continue
            scores[row["label"]].append(row["score"])
            if row["label"] == "real":  # what the calibration's footage looks like: its domain
                real_embeddings.append(tracks[row["video_id"]][row["track"]].embeddings.mean(axis=0))
                datasets[row["dataset"]] += 1
    return {"real": scores["real"], "fake": scores["fake"], "left_out_seen": left_out,
            "real_embeddings": np.array(real_embeddings), "datasets": dict(datasets)}


def run_bundle(backbone_uri: str, model_uri: str, out_uri: str, cfg: Config,
               calibrate_uri: Optional[str] = None, allow_unrecorded: bool = False) -> Dict[str, Any]:
    from ..pipeline.claim import check_apart

    backbone_uri, model_uri, out_uri = (storage.absolute(u) for u in (backbone_uri, model_uri, out_uri))
    calibrate_uri = storage.absolute(calibrate_uri) if calibrate_uri else None
    check_apart(out_uri, {"backbone": backbone_uri, "anomaly model": model_uri, "calibration embeddings": calibrate_uri})
    unrecorded = check_parts_belong(backbone_uri, model_uri, calibrate_uri, allow_unrecorded)
    calibration, card = None, {}
    try:
        from ..runtime import read_run_record

        card["backbone_training"] = {k: read_run_record(posixpath.dirname(backbone_uri)).get(k)
                                     for k in ("history", "counts", "inputs")}
    except (FileNotFoundError, ValueError):
        card["backbone_training"] = "no run record beside the backbone (e.g. untrained ImageNet weights)"
    if unrecorded:
        card["unrecorded"] = unrecorded + ["bundled with --allow-unrecorded: the calibration may count videos a "
                                           "model saw as held out"]
        for note in unrecorded:
            print(f"bundle: warning: {note}", flush=True)
    if calibrate_uri:
        held = held_out_scores(calibrate_uri, model_uri, backbone_uri, cfg)
        calibration = calibrate(held["real"], held["fake"] or None)
        calibration.update(source=calibrate_uri, left_out_seen_videos=held["left_out_seen"],
                           calibrated_on=calibration_footage(held["datasets"]))
        if len(held["real_embeddings"]) >= 3:
            calibration["domain"] = domain_reference(held["real_embeddings"])
        card["validation"] = {k: calibration.get(k) for k in ("n_real", "n_fake", "auc", "operating_points")}
    manifest = write_bundle(backbone_uri, model_uri, out_uri, cfg, calibration, card)
    line = f"bundle: {out_uri}"
    if calibration:
        line += (f"; calibrated on {calibration['n_real']} held-out real videos ({held['left_out_seen']} seen ones "
                 f"left out): thresholds " + ", ".join(f"{float(k):.0%} FPR {v:.2f}"
                                                        for k, v in calibration["thresholds"].items()))
        if "auc" in calibration:
            line += f"; AUC {calibration['auc']:.3f} on {calibration['n_fake']} labelled fakes"
        if calibration["n_real"] < MIN_CALIBRATION_REALS:
            line += (f"; warning: fewer than {MIN_CALIBRATION_REALS} real videos, every verdict will say its "
                     f"threshold is rough")
    print(line, flush=True)
    return manifest


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
