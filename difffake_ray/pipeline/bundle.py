"""bundle: a backbone and an anomaly model packed into one portable detector (``bundle.py``),
calibrated on the real videos of an embeddings folder that neither model has seen."""

from __future__ import annotations

import collections
import posixpath
from typing import Any, Dict, List, Optional

import numpy as np

from .. import schema, storage
from ..bundle import MIN_CALIBRATION_REALS, BundleError, write_bundle
from ..calibration import calibrate, domain_reference
from ..config import Config
from .claim import check_apart, hold


class UnrecordedError(ValueError):
    """A bundle part whose record of what it saw, or what made it, is missing: refused unless asked."""


def check_parts_belong(backbone_uri: str, model_uri: str, calibrate_uri: Optional[str],
                       allow_unrecorded: bool) -> List[str]:
    """Refuse parts that do not belong together: an anomaly model fitted on another backbone's
    embeddings, calibration embeddings from another backbone. A part whose record is missing
    (which backbone made the embeddings, which videos a model saw) is refused too unless
    ``allow_unrecorded``: calibration would then count those videos as held out. -> the notes
    that a bundle made with ``allow_unrecorded`` carries."""
    from ..adm.persistence import MODEL_META_FILE
    from ..backbone import fingerprint, load_embedder_file
    from ..runtime import FITTED_VIDEOS, TRAINED_VIDEOS, read_run_record

    mine = fingerprint(backbone_uri)
    try:  # its record is all this needs: write_bundle loads and checks the model itself
        meta = storage.read_json(storage.join(model_uri, MODEL_META_FILE))
    except FileNotFoundError:
        raise FileNotFoundError(f"{model_uri}: no {MODEL_META_FILE} (write one with `python cli.py fit`)") from None
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
    backbone_uri, model_uri, out_uri = (storage.absolute(u) for u in (backbone_uri, model_uri, out_uri))
    calibrate_uri = storage.absolute(calibrate_uri) if calibrate_uri else None
    inputs = {"backbone": backbone_uri, "anomaly model": model_uri, "calibration embeddings": calibrate_uri}
    check_apart(out_uri, inputs)  # both refusals before anything is written
    unrecorded = check_parts_belong(backbone_uri, model_uri, calibrate_uri, allow_unrecorded)
    with hold(out_uri, "bundle", inputs=inputs):
        return _bundle(backbone_uri, model_uri, out_uri, cfg, calibrate_uri, unrecorded)


def _bundle(backbone_uri: str, model_uri: str, out_uri: str, cfg: Config, calibrate_uri: Optional[str],
            unrecorded: List[str]) -> Dict[str, Any]:
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
