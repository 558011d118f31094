"""Calibration from real videos alone: DiffFake is one-class, so where a real video's score falls
among held-out real videos' scores says how unusual it is, and a threshold for a target false-
positive rate needs no fake at all. Fakes, when labelled ones are at hand, only add the AUC and
the true-positive rate at each threshold.

Scores are mean pair scores (log-likelihoods, or regional_gmm's z-scores): higher = more real;
a video is called fake when its score is below the threshold.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

FPR_TARGETS = (0.01, 0.05)
QUANTILE_LEVELS = np.round(np.linspace(0.0, 1.0, 1001), 4)  # 0.1% steps of the real-score distribution


def calibrate(real_scores: Sequence[float], fake_scores: Optional[Sequence[float]] = None,
              targets: Sequence[float] = FPR_TARGETS) -> Dict:
    """-> {"n_real", "quantiles": {"levels", "scores"}, "thresholds": {fpr: score}, ...} and, with
    fakes, {"n_fake", "auc", "operating_points": {fpr: {"threshold", "fpr", "tpr"}}}."""
    real = np.sort(np.asarray(real_scores, np.float64))
    if len(real) < 2 or not np.all(np.isfinite(real)):
        raise ValueError(f"calibration needs at least 2 finite real-video scores, got {len(real)}")
    out: Dict = {
        "n_real": int(len(real)),
        "quantiles": {"levels": QUANTILE_LEVELS.tolist(), "scores": np.quantile(real, QUANTILE_LEVELS).tolist()},
        # a real video scores below the t-quantile with probability t: the false-positive rate
        "thresholds": {f"{t:g}": float(np.quantile(real, t)) for t in targets},
        "resolution_note": (f"{len(real)} real videos: thresholds below a {100 / len(real):.1f}% FPR are "
                            f"extrapolated from the lowest real score" if len(real) < 100 else ""),
    }
    if fake_scores is not None and len(fake_scores):
        from sklearn.metrics import roc_auc_score

        fake = np.asarray(fake_scores, np.float64)
        y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
        out.update(n_fake=int(len(fake)), auc=float(roc_auc_score(y, -np.r_[real, fake])),
                   operating_points={k: {"threshold": thr, "fpr": float(np.mean(real < thr)),
                                         "tpr": float(np.mean(fake < thr))}
                                     for k, thr in out["thresholds"].items()})
    return out


def real_percentile(score: float, calibration: Dict) -> float:
    """Where ``score`` falls among the calibration's real videos, 0-100 (low = unlike a real one)."""
    q = calibration["quantiles"]
    return float(100.0 * np.interp(score, q["scores"], q["levels"], left=0.0, right=1.0))


def verdict(score: float, calibration: Dict, fpr: float) -> str:
    key = f"{fpr:g}"
    if key not in calibration["thresholds"]:
        raise ValueError(f"no threshold for a false-positive rate of {fpr:g}; the bundle has "
                         f"{', '.join(calibration['thresholds'])}")
    return "fake" if score < calibration["thresholds"][key] else "real"


def domain_reference(video_embeddings: np.ndarray, margin: float = 1.5, quantile: float = 0.9) -> Dict:
    """What the calibration's real videos look like to the backbone: the mean and spread of their
    mean face embeddings (N, D), and how far each lies from the others (leave one out). A new
    video further than ``margin`` times the ``quantile`` of those distances is outside the
    calibration domain: its score's percentile among these videos means nothing (synthetic drawn
    faces calibrate no verdict on phone footage). A quantile, not the furthest: one unusual
    calibration video (the demo's photographed astronaut lies at 3.6 where the others lie at
    0.85-1.23) would otherwise let everything in. -> {"mean", "scale", "loo_distances", "limit"}."""
    X = np.asarray(video_embeddings, np.float64)
    n = len(X)
    if n < 3:
        raise ValueError(f"a calibration domain needs at least 3 real videos, got {n}")
    total, total_sq = X.sum(axis=0), (X ** 2).sum(axis=0)
    loo = []
    for x in X:  # each video against the mean and spread of the others
        mean = (total - x) / (n - 1)
        var = np.maximum((total_sq - x ** 2) / (n - 1) - mean ** 2, 0.0)
        loo.append(_distance(x, mean, np.sqrt(var)))
    mean, scale = X.mean(axis=0), X.std(axis=0)
    return {"mean": mean.tolist(), "scale": scale.tolist(), "loo_distances": [float(d) for d in loo],
            "limit": float(margin * np.quantile(loo, quantile))}


def _distance(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> float:
    floor = 1e-3 * max(float(np.median(scale)), 1e-12)  # a dimension that never varied cannot dominate
    return float(np.sqrt(np.mean(((x - mean) / np.maximum(scale, floor)) ** 2)))


def domain_distance(video_embedding: np.ndarray, reference: Dict) -> float:
    """How far a video's mean face embedding (D,) lies from the calibration videos', in the units
    of ``domain_reference`` (root mean square of per-dimension z-scores)."""
    return _distance(np.asarray(video_embedding, np.float64), np.asarray(reference["mean"]),
                     np.asarray(reference["scale"]))
