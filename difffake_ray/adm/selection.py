"""Choosing a GMM's covariance regularisation on held-out real videos: grouped K-fold, so that a
video's pairs never straddle train and held-out. Used by fit's small-data remedy (one GMM) and by
each block of the regional model."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np


def grouped_folds(groups: np.ndarray, n_folds: int) -> List:
    """(train rows, held-out rows) of each fold; at most one fold per group."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    return list(GroupKFold(n_splits=min(n_folds, len(np.unique(groups)))).split(groups, groups=groups))


def held_out_log_likelihoods(X: np.ndarray, folds: List, make_model) -> Optional[np.ndarray]:
    """Each row's log-likelihood under a model fitted on the folds it is not in; None when a fit is
    singular (at this regularisation)."""
    out = np.empty(len(X))
    try:
        for train_idx, test_idx in folds:
            out[test_idx] = make_model().fit(X[train_idx]).score_samples(X[test_idx])
    except (ValueError, np.linalg.LinAlgError):
        return None
    return out


def select_reg_covar(X: np.ndarray, groups: np.ndarray, grid, n_folds: int, make_model) -> Dict[str, Any]:
    """The covariance regularisation that best predicts held-out real videos: the mean over folds of
    the mean held-out log-likelihood, per grid value. Uses real videos only, like the fit itself."""
    folds = grouped_folds(groups, n_folds)
    held_out = []
    for reg in grid:
        ll = held_out_log_likelihoods(X, folds, lambda: make_model(reg))
        held_out.append(float("-inf") if ll is None else float(np.mean([ll[test].mean() for _, test in folds])))
    best = int(np.argmax(held_out))
    # the largest value won: a larger one may predict held-out videos better still
    at_top = len(grid) > 1 and float(grid[best]) == max(float(g) for g in grid)
    return {"grid": [float(g) for g in grid], "held_out_loglik": held_out, "chosen": float(grid[best]),
            "folds": len(folds), "largest_of_grid": at_top}
