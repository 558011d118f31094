"""One GMM per face region and level of detail; a video is as real as its least likely block.

Read with the ``regions`` embedding head, whose vector is ``n_regions`` equal blocks (one per cell
of a grid over the face), each its stages' channel means side by side. A local manipulation (a
lip-sync, an eye edit) changes one or two cells: a single density over every cell sums its change
with the pose and expression changes of the rest and misses it; a density per cell does not.
Within a cell the same holds across depth: a generator's resolution, blending and colour live in
the early stages (a few dozen channels), pose and expression in the late ones (hundreds), so a
cell is split into a **texture** block (its first ``texture_stages`` stages) and a **semantic**
block (the rest), each with its own density. On a corpus independent of the quality bench's the
split took lip-sync AUC from 0.77 to 0.94 (docs/quality.md). Without the stage widths
(another head, an old embedder file) a cell is one block. What makes the blocks' scores comparable:

- **log magnitudes**: each pair feature becomes ``log(|x| / scale + 1e-2)``, ``scale`` its mean
  magnitude over the training pairs. Squared differences are heavy-tailed; their logs are nearer
  the Gaussians a GMM is made of, and every dimension gets the same units, so one ``reg_covar``
  grid (relative, 0.1 to 10) suits any backbone. The sign of ``sub`` / ``sub3`` is dropped.
- **per block, the paper's GMM** (k components, full covariance), its ``reg_covar`` chosen by the
  held-out log-likelihood of real videos (grouped K-fold: a video's pairs never straddle a fold).
- **standardised at the video level**: the same folds give every training video's pairs an
  out-of-fold log-likelihood per block; their variance between videos and within a video give the
  spread of a real video's mean over n pairs (``between + within / n``), which turns a video's
  per-block mean into a z-score whatever its number of pairs: a real video with face dropouts (4
  pairs) is no longer spread wider, and so no longer lower at the minimum over blocks. A video's score is its lowest z-score (higher = more real, as every anomaly model's).
  Averaging pairs before taking the minimum keeps one odd pair from deciding. Its pairs' scores
  are their z-scores in that block, so that their mean is the video's score.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..storage import ModelFileError
from .models import ANOMALY_MODELS, AnomalyModel, GmmAnomalyModel
from .selection import grouped_folds, held_out_log_likelihoods

LOG_FLOOR = 1e-2  # in units of a dimension's mean magnitude: keeps log() of a zero change finite
RELATIVE_REG_COVAR_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)


def video_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The mean of ``values`` (N,) within each group."""
    _, inverse = np.unique(groups, return_inverse=True)
    return np.bincount(inverse, weights=values) / np.bincount(inverse)


def variance_components(values: np.ndarray, groups: np.ndarray):
    """Pair scores (N,) of videos (``groups``) -> (mean of the video means, the variance of a
    video's true mean between videos, the variance of one pair within a video). A video's mean
    over n pairs then varies by ``between + within / n`` around the first: the spread its z-score
    needs, whatever n is (one-way random-effects ANOVA, method of moments)."""
    _, inverse = np.unique(groups, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    means = np.bincount(inverse, weights=values) / n
    residual = values - means[inverse]
    dof = max(len(values) - len(n), 1)
    within = float(np.sum(residual ** 2) / dof)
    between = float(means.var(ddof=1) - np.mean(within / n)) if len(n) > 1 else 0.0
    # a floor: the between-video part is never taken as smaller than a tenth of what the video means show
    between = max(between, 0.1 * float(means.var(ddof=1)) if len(n) > 1 else 0.0, 1e-12)
    return float(means.mean()), between, within


def mean_spread(between: np.ndarray, within: np.ndarray, n_pairs: int) -> np.ndarray:
    """The standard deviation of a real video's mean pair score over ``n_pairs`` pairs, per block."""
    return np.sqrt(between + within / max(int(n_pairs), 1))


@ANOMALY_MODELS.register("regional_gmm")
class RegionalGmmAnomalyModel(AnomalyModel):
    score_meaning = "higher = more likely real (z-score of the least likely block's log-likelihood)"

    def __init__(self, n_regions: int = 1, region_stages: Optional[Sequence[int]] = None, texture_stages: int = 3,
                 n_components: int = 3, max_iter: int = 250,
                 reg_covar_grid: Sequence[float] = RELATIVE_REG_COVAR_GRID, folds: int = 3, seed: int = 0,
                 spread_by_pairs: bool = True):
        self.n_regions = int(n_regions)
        self.region_stages = None if region_stages is None else [int(c) for c in region_stages]
        self.texture_stages, self.n_components, self.max_iter = int(texture_stages), n_components, max_iter
        self.reg_covar_grid, self.folds, self.seed = [float(g) for g in reg_covar_grid], folds, seed
        self.spread_by_pairs = bool(spread_by_pairs)
        self.blocks_: List[GmmAnomalyModel] = []
        self.selection_: List[Dict] = []
        self.between_var_: Optional[np.ndarray] = None
        self.within_var_: Optional[np.ndarray] = None

    def _gmm(self, reg_covar: float) -> GmmAnomalyModel:
        return GmmAnomalyModel(n_components=self.n_components, max_iter=self.max_iter, reg_covar=reg_covar,
                               seed=self.seed)

    def level_widths(self, region_width: int) -> List[int]:
        """Columns of each level of detail in a region's block: [texture, semantic], or the whole
        block when the stage widths are unknown or the split leaves a level empty."""
        stages, k = self.region_stages, self.texture_stages
        if stages is None or not 0 < k < len(stages):
            return [region_width]
        if sum(stages) != region_width:
            raise ValueError(f"stage widths {stages} (sum {sum(stages)}) do not make a region of {region_width} "
                             f"columns")
        return [sum(stages[:k]), sum(stages[k:])]

    def block_columns(self, d: int) -> List[slice]:
        """The columns of each block, region by region, texture before semantic within a region."""
        r = self.n_regions
        if d % r:
            raise ValueError(f"pair features of dim {d} do not split into {r} equal regions")
        w = d // r
        cuts = np.cumsum([0] + self.level_widths(w))
        return [slice(i * w + a, i * w + b) for i in range(r) for a, b in zip(cuts[:-1], cuts[1:])]

    def _log(self, X: np.ndarray) -> np.ndarray:
        return np.log(np.abs(np.asarray(X, np.float64)) / self.scale_ + LOG_FLOOR)

    def fit(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> "RegionalGmmAnomalyModel":
        """``groups``: the video of each pair, for the held-out choices above (required here)."""
        if groups is None:
            raise ValueError("regional_gmm chooses its blocks' models on held-out videos: fit(X, groups) needs "
                             "the video of each pair")
        groups = np.asarray(groups)
        n_videos = len(np.unique(groups))
        if n_videos < 2:
            raise ValueError(f"regional_gmm needs real pairs of at least 2 videos to choose and standardise "
                             f"its blocks' models; got {n_videos}")
        X = np.asarray(X, np.float64)
        self.scale_ = np.maximum(np.abs(X).mean(axis=0), 1e-12)
        T = self._log(X)
        folds = grouped_folds(groups, self.folds)
        # one BLAS/OpenMP thread: on blocks of a few hundred columns the threads cost more than they
        # give (a 432-column block's reg_covar search: 14 s with 2 threads, 2.8 s with 1, 2 cores)
        with threadpool_limits(limits=1):
            self._fit_blocks(T, groups, folds)
        return self

    def _fit_blocks(self, T: np.ndarray, groups: np.ndarray, folds: List) -> None:
        self.blocks_, self.selection_, loc, spread, between, within = [], [], [], [], [], []
        for cols in self.block_columns(T.shape[1]):
            Tb = T[:, cols]
            best = None
            for reg in self.reg_covar_grid:
                ll = held_out_log_likelihoods(Tb, folds, lambda: self._gmm(reg))
                if ll is None:  # singular at this regularisation
                    continue
                if best is None or ll.mean() > best[1].mean():
                    best = (reg, ll)
            if best is None:
                raise ValueError(f"no reg_covar of {self.reg_covar_grid} gives a usable GMM "
                                 f"for block {len(self.blocks_)}")
            reg, ll = best
            per_video = video_means(ll, groups)
            centre, between_var, within_var = variance_components(ll, groups)
            loc.append(centre)
            spread.append(max(per_video.std(), 1e-6))
            between.append(between_var)
            within.append(within_var)
            self.selection_.append({"reg_covar": reg, "held_out_loglik": float(ll.mean())})
            self.blocks_.append(self._gmm(reg).fit(Tb))
        self.loc_, self.spread_ = np.array(loc), np.array(spread)
        self.between_var_, self.within_var_ = np.array(between), np.array(within)

    def block_log_likelihoods(self, X: np.ndarray) -> np.ndarray:
        """(N, D) pair features -> (N, blocks) log-likelihood of each block's columns."""
        blocks = self.block_columns(np.shape(X)[1])
        T = self._log(X)
        return np.stack([m.score_samples(T[:, cols]) for m, cols in zip(self.blocks_, blocks)], axis=1)

    def _z(self, ll: np.ndarray, n_pairs: Optional[int] = None) -> np.ndarray:
        """Log-likelihoods as z-scores of real videos' means: with ``n_pairs``, against the spread
        of a mean over that many pairs (few pairs spread wider; without this, real videos with face
        dropouts looked fake); without, against the training videos' own spread."""
        if n_pairs is None or self.within_var_ is None or not self.spread_by_pairs:
            return (ll - self.loc_) / self.spread_
        return (ll - self.loc_) / mean_spread(self.between_var_, self.within_var_, n_pairs)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """A pair's score: its least likely block's z-score (what a report draws per pair)."""
        return self._z(self.block_log_likelihoods(X)).min(axis=1)

    def video_pair_scores(self, X: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
        """Pairs of several videos, consecutive (``sizes`` pairs each) -> each pair's z-score in its
        video's least likely block (the lowest z-score of the blocks' means over its pairs). A
        video's mean pair score is then its score, and its pairs read on the same scale."""
        ll = self.block_log_likelihoods(X)
        out = np.empty(len(ll))
        bounds = np.cumsum([0] + list(sizes))
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b > a:
                z = self._z(ll[a:b], n_pairs=b - a)
                out[a:b] = z[:, int(np.argmin(z.mean(axis=0)))]
        return out

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Pickle-free arrays: a level's blocks share a width, so each level's means and precisions
        stack over regions (``means_0`` texture, ``means_1`` semantic; one level: ``means_0``)."""
        n_levels = len(self.blocks_) // self.n_regions
        out = {"scale": self.scale_, "loc": self.loc_, "spread": self.spread_,
               "between_var": self.between_var_, "within_var": self.within_var_,
               "reg_covar": np.array([s["reg_covar"] for s in self.selection_]),
               "weights": np.stack([m.weights_ for m in self.blocks_])}
        for lvl in range(n_levels):
            level = self.blocks_[lvl::n_levels]
            out[f"means_{lvl}"] = np.stack([m.means_ for m in level])
            out[f"precisions_cholesky_{lvl}"] = np.stack([m.precisions_cholesky_ for m in level])
        return out

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], params: Dict) -> "RegionalGmmAnomalyModel":
        m = cls(**params)
        m.scale_, m.loc_, m.spread_ = arrays["scale"], arrays["loc"], arrays["spread"]
        m.between_var_, m.within_var_ = arrays.get("between_var"), arrays.get("within_var")
        n_levels = len(m.level_widths(len(m.scale_) // m.n_regions))
        m.blocks_ = [GmmAnomalyModel.from_arrays({"weights": arrays["weights"][b],
                                                  "means": arrays[f"means_{b % n_levels}"][b // n_levels],
                                                  "precisions_cholesky":
                                                      arrays[f"precisions_cholesky_{b % n_levels}"][b // n_levels]},
                                                 m._gmm(float(arrays["reg_covar"][b])).get_params())
                     for b in range(len(arrays["reg_covar"]))]
        m.selection_ = [{"reg_covar": float(r)} for r in arrays["reg_covar"]]
        return m

    @classmethod
    def check_arrays(cls, arrays, params, dim, where) -> None:
        """The block layout the parameters make of ``dim`` columns, against the arrays' shapes."""
        layout = cls(**params)
        r = layout.n_regions
        if r < 1 or dim % r:
            raise ModelFileError(f"{where['model']}: dim {dim} does not split into {r} regions")
        try:
            widths = layout.level_widths(dim // r)
        except ValueError as e:
            raise ModelFileError(f"{where['meta']}: {e}") from None
        levels = range(len(widths))
        need = ["scale", "loc", "spread", "reg_covar", "weights"] + [f"{name}_{lvl}" for lvl in levels
                                                                    for name in ("means", "precisions_cholesky")]
        if any(k not in arrays for k in need):
            raise ModelFileError(f"{where['arrays']}: a regional_gmm of {len(widths)} level(s) needs "
                                 f"{', '.join(need)}; has {', '.join(sorted(arrays))}")
        b, k = r * len(widths), arrays["weights"].shape[-1]
        shapes = {"scale": (dim,), "loc": (b,), "spread": (b,), "reg_covar": (b,), "weights": (b, k)}
        for lvl, w in zip(levels, widths):
            shapes.update({f"means_{lvl}": (r, k, w), f"precisions_cholesky_{lvl}": (r, k, w, w)})
        if ("between_var" in arrays) != ("within_var" in arrays):
            raise ModelFileError(f"{where['arrays']}: holds one of between_var and within_var without the other")
        # files written before the few-pairs standardisation have neither: scored as before
        shapes.update({name: (b,) for name in ("between_var", "within_var") if name in arrays})
        wrong = [f"{name} {arrays[name].shape}" for name, shape in shapes.items() if arrays[name].shape != shape]
        if wrong:
            raise ModelFileError(f"{where['model']}: arrays do not fit {r} regions x {len(widths)} level(s) {widths} "
                                 f"of {k} components in dim {dim} ({', '.join(wrong)})")

    @classmethod
    def upgrade_arrays(cls, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Files written before the texture / semantic split: one block per region, the same arrays
        as level 0."""
        if "means" in arrays and "means_0" not in arrays:
            arrays = dict(arrays)
            arrays["means_0"], arrays["precisions_cholesky_0"] = arrays.pop("means"), arrays.pop("precisions_cholesky")
        return arrays
