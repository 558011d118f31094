"""Detection metrics on arrays: ROC AUC with DeLong's standard error, average precision, EER.

Convention: the score is the mean pair score (a log-likelihood), higher = more real; the metrics are for
detecting fakes with -score. The reference code's binarised "AUC" (threshold at the test set's
Youden point, = balanced accuracy) is reported beside it, labelled as tuned on the test set.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np


def auc_delong(positive: np.ndarray, negative: np.ndarray):
    """ROC AUC of ``positive`` scoring above ``negative`` and its standard error by DeLong's method
    (placement values from midranks: O(n log n), so a million videos cost one sort, where a
    bootstrap would cost a thousand)."""
    from scipy.stats import rankdata

    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    m, n = len(positive), len(negative)
    both = rankdata(np.concatenate([positive, negative]))
    above = (both[:m] - rankdata(positive)) / n  # per positive: the share of negatives below it
    below = 1.0 - (both[m:] - rankdata(negative)) / m  # per negative: the share of positives above it
    auc = float(above.mean())
    var = (above.var(ddof=1) / m if m > 1 else 0.0) + (below.var(ddof=1) / n if n > 1 else 0.0)
    return auc, float(np.sqrt(var))


def video_auc(labels: List[str], scores: np.ndarray) -> Dict[str, float]:
    """Detection metrics of fakes (-score) among labelled videos: ROC AUC with its 95% confidence
    interval (DeLong), average precision, equal error rate, and the reference code's
    Youden-binarised AUC (its threshold tuned on these videos)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    y = np.array([1 if l == "fake" else 0 for l in labels])
    out = {"auc": float("nan"), "auc_ci95": [float("nan"), float("nan")], "ap": float("nan"), "eer": float("nan"),
           "youden_binarised_auc": float("nan"), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    if len(np.unique(y)) < 2:
        return out
    fake_score = -np.asarray(scores, np.float64)
    fpr, tpr, thr = roc_curve(y, fake_score)
    best = np.argmax(tpr - fpr)
    pred = (fake_score >= thr[best]).astype(int)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))  # where the miss rate meets the false-alarm rate
    auc, se = auc_delong(fake_score[y == 1], fake_score[y == 0])  # the AUC with its error, from one ranking
    out.update(auc=auc, auc_ci95=[max(0.0, auc - 1.96 * se), min(1.0, auc + 1.96 * se)],
               ap=float(average_precision_score(y, fake_score)), eer=float((fpr[i] + fnr[i]) / 2),
               youden_binarised_auc=float(roc_auc_score(y, pred)))
    return out
