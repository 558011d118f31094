"""Video-level evaluation: ROC AUC overall, per dataset and per manipulation method; plots.

Convention: the score is the mean pair log-likelihood, higher = more real; AUC is computed for
detecting fakes with -score. The reference code's binarised "AUC" (threshold at the test set's
Youden point, = balanced accuracy) is reported beside it, labelled as tuned on the test set.
"""

from __future__ import annotations

import io
import time
from typing import Any, Dict, List

import numpy as np

from . import schema, storage
from .config import Config
from .runtime import write_run_record


def video_auc(labels: List[str], scores: np.ndarray) -> Dict[str, float]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.array([1 if l == "fake" else 0 for l in labels])
    if len(np.unique(y)) < 2:
        return {"auc": float("nan"), "youden_binarised_auc": float("nan"), "n_real": int((y == 0).sum()),
                "n_fake": int((y == 1).sum())}
    fake_score = -np.asarray(scores, np.float64)
    fpr, tpr, thr = roc_curve(y, fake_score)
    best = np.argmax(tpr - fpr)
    pred = (fake_score >= thr[best]).astype(int)
    return {"auc": float(roc_auc_score(y, fake_score)),
            "youden_binarised_auc": float(roc_auc_score(y, pred)),
            "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def run_evaluate(scores_uri: str, out_uri: str, cfg: Config) -> Dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    started = time.time()
    table = storage.read_parquet_dir(scores_uri, schema=schema.SCORES_SCHEMA).to_pylist()
    if cfg.evaluate.split:
        table = [r for r in table if r["split"] == cfg.evaluate.split]
    scored = [r for r in table if r["score"] is not None and r["label"] in ("real", "fake")]
    unscored = {}
    for r in table:
        if r["score"] is None:
            unscored[r["status"]] = unscored.get(r["status"], 0) + 1
    metrics: Dict[str, Any] = {
        "convention": "score = mean pair log-likelihood under the real-pair GMM; higher = more real; "
                      "AUC of -score for detecting fakes (video level)",
        "videos": len(table), "scored": len(scored), "not_scored_by_status": unscored,
        "overall": video_auc([r["label"] for r in scored], np.array([r["score"] for r in scored])),
        "per_dataset": {}, "per_method": {},
    }
    for ds in sorted({r["dataset"] for r in scored}):
        rows = [r for r in scored if r["dataset"] == ds]
        metrics["per_dataset"][ds] = video_auc([r["label"] for r in rows], np.array([r["score"] for r in rows]))
        reals = [r for r in rows if r["label"] == "real"]
        for m in sorted({r["method"] for r in rows if r["label"] == "fake"}):
            sub = reals + [r for r in rows if r["label"] == "fake" and r["method"] == m]
            metrics["per_method"][f"{ds}/{m}"] = video_auc([r["label"] for r in sub],
                                                           np.array([r["score"] for r in sub]))
    storage.write_json_atomic(storage.join(out_uri, "metrics.json"), metrics)

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, rows in [("all", scored)] + [(k, [r for r in scored if f"{r['dataset']}/{r['method']}" == k or
                                                 (r["label"] == "real" and r["dataset"] == k.split("/")[0])])
                                            for k in metrics["per_method"]]:
        y = [1 if r["label"] == "fake" else 0 for r in rows]
        if len(set(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, [-r["score"] for r in rows])
        auc = metrics["overall"]["auc"] if name == "all" else metrics["per_method"][name]["auc"]
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", lw=2 if name == "all" else 1)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate (fake detected)")
    ax.set_title("DiffFake video-level ROC")
    ax.legend(fontsize=7, loc="lower right")
    storage.write_bytes_atomic(storage.join(out_uri, "roc.png"), _png(fig))

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, colour in (("real", "tab:blue"), ("fake", "tab:red")):
        s = [r["score"] for r in scored if r["label"] == label]
        if s:
            ax.hist(s, bins=30, alpha=0.6, color=colour, label=f"{label} ({len(s)})")
    ax.set_xlabel("video score (mean pair log-likelihood; higher = more real)")
    ax.set_ylabel("videos")
    ax.legend()
    storage.write_bytes_atomic(storage.join(out_uri, "score_hist.png"), _png(fig))
    write_run_record(out_uri, "evaluate", cfg, inputs={"scores": scores_uri},
                     counts={"videos": len(table), "scored": len(scored)}, started=started)
    o = metrics["overall"]
    print(f"evaluate: video AUC {o['auc']:.4f} ({o['n_real']} real, {o['n_fake']} fake; Youden-binarised "
          f"{o['youden_binarised_auc']:.4f}); report: {out_uri}/metrics.json, roc.png, score_hist.png", flush=True)
    return metrics
