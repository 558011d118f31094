"""Anomaly models (registry), each an ``AnomalyModel``: scikit-learn's estimator shape
(explicit parameters, ``get_params``, ``fit(X, groups=None)``, ``score_samples(X)``: higher =
more normal = more real) and its own pickle-free arrays. A new model is one file here."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..registry import Registry, parameters
from ..storage import ModelFileError

ANOMALY_MODELS = Registry("anomaly model", modules={"autoencoder": "difffake_ray.adm.autoencoder",
                                                     "regional_gmm": "difffake_ray.adm.regional"})


def create_anomaly_model(name: str, **kwargs):
    return ANOMALY_MODELS.create(name, **kwargs)


class AnomalyModel:
    """The contract of every anomaly model, scikit-learn's estimator shape:

    - its parameters are its constructor's, explicit, kept as attributes of the same name
      (``get_params``: what model.json records as ``params``); fitted state ends in ``_``;
    - ``fit(X, groups=None)``: pair features of real videos (N, D), ``groups`` the video of each
      pair (a model that chooses its settings on held-out videos needs them; others ignore them);
    - ``score_samples(X)``: higher = more likely real (``score_meaning`` says in what unit);
    - ``to_arrays()`` / ``from_arrays(arrays, params)``: its own state without pickle, and
      ``check_arrays`` the shapes a model file must have, checked at load before any scoring.
    """

    score_meaning = "higher = more likely real (log-likelihood under real pairs)"

    @classmethod
    def param_names(cls) -> List[str]:
        return parameters(cls)

    def get_params(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    @classmethod
    def check_arrays(cls, arrays: Dict[str, np.ndarray], params: Dict[str, Any], dim: int,
                     where: Dict[str, str]) -> None:
        """Raise ModelFileError, naming ``where["arrays"]`` (or ``where["meta"]``), when ``arrays``
        cannot be this model's of ``dim``-wide pair features."""

    @classmethod
    def upgrade_arrays(cls, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The arrays of a file written by an earlier version, as this version names them."""
        return arrays


def gaussian_log_likelihood(X: np.ndarray, weights: np.ndarray, means: np.ndarray,
                            precisions_cholesky: np.ndarray) -> np.ndarray:
    """Log-likelihood (N,) of X (N, D) under a full-covariance GMM, in float64: the reference.

    log p(x) = logsumexp_k [log w_k - D/2 log 2pi + log det L_k - 1/2 ||(x - mu_k) L_k||^2] with
    L_k the Cholesky factor of the precision matrix (scikit-learn's parameterisation).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    k = means.shape[0]
    log_prob = np.empty((n, k))
    for c in range(k):  # K is 3: each iteration is one (N, D) x (D, D) matrix product
        y = X @ precisions_cholesky[c] - means[c] @ precisions_cholesky[c]
        log_prob[:, c] = np.einsum("ij,ij->i", y, y)
    return _mixture_logsumexp(log_prob, _component_constants(weights, precisions_cholesky))


def _component_constants(weights, precisions_cholesky) -> np.ndarray:
    """log w_k + log |det L_k| - D/2 log 2pi, per component."""
    d = precisions_cholesky.shape[-1]
    log_det = np.linalg.slogdet(precisions_cholesky)[1]  # any factor, not only triangular ones
    return np.log(weights) + log_det - 0.5 * d * np.log(2 * np.pi)


def _mixture_logsumexp(sq_dist: np.ndarray, constants: np.ndarray) -> np.ndarray:
    log_prob = constants - 0.5 * sq_dist
    m = log_prob.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(log_prob - m).sum(axis=1, keepdims=True)))[:, 0]


class FastGaussianScorer:
    """The same log-likelihood, 3-4x faster on CPU: float32 products (relative error ~1e-6, the
    sums and logsumexp stay float64), and scikit-learn's precision factors are upper triangular,
    so a triangular product (BLAS trmm) does half the work of a full one. Rows go in chunks that
    stay in cache; X^T is passed so BLAS needs no copy of the C-ordered input."""

    def __init__(self, weights, means, precisions_cholesky, chunk: int = 2048):
        from scipy.linalg import blas

        self.constants, self.chunk = _component_constants(weights, precisions_cholesky), chunk
        self.factors = [np.asfortranarray(p, dtype=np.float32) for p in precisions_cholesky]
        self.shift = [(m @ p).astype(np.float32) for m, p in zip(means, precisions_cholesky)]
        self.triangular = all(np.allclose(np.tril(p, -1), 0) for p in precisions_cholesky)
        self.trmm = blas.strmm

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        sq = np.empty((n, len(self.factors)))
        for start in range(0, n, self.chunk):
            xb = X[start:start + self.chunk]
            for c, (f, shift) in enumerate(zip(self.factors, self.shift)):
                if self.triangular:  # (U^T X^T)^T = X U
                    y = self.trmm(1.0, f, xb.T, side=0, lower=0, trans_a=1).T
                else:
                    y = xb @ f
                y -= shift
                sq[start:start + len(xb), c] = np.einsum("ij,ij->i", y, y)
        return _mixture_logsumexp(sq, self.constants)


class TorchGaussianScorer:
    """The log-likelihood on a GPU: one float32 (N, D) x (D, K*D) product per chunk; the sums and
    logsumexp in float64 on the host, as on CPU."""

    def __init__(self, weights, means, precisions_cholesky, device: str = "cuda", chunk: int = 8192):
        import torch

        self.torch, self.device, self.chunk = torch, torch.device(device), chunk
        self.k, self.d = means.shape
        self.constants = _component_constants(weights, precisions_cholesky)
        self.factors = torch.from_numpy(np.concatenate(list(precisions_cholesky), axis=1).astype(np.float32)).to(
            self.device)  # (D, K*D)
        self.shift = torch.from_numpy(np.concatenate(
            [m @ p for m, p in zip(means, precisions_cholesky)]).astype(np.float32)).to(self.device)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch
        parts = []
        with torch.inference_mode():
            for start in range(0, len(X), self.chunk):
                xb = torch.from_numpy(np.ascontiguousarray(X[start:start + self.chunk], np.float32)).to(self.device)
                y = (xb @ self.factors - self.shift).view(len(xb), self.k, self.d)
                parts.append(y.square().sum(-1).double().cpu().numpy())
        sq = np.concatenate(parts) if parts else np.empty((0, self.k))
        return _mixture_logsumexp(sq, self.constants)


def _assigned_gpu() -> bool:
    """True in a Ray worker given a GPU (Ray sets CUDA_VISIBLE_DEVICES to '' otherwise)."""
    import os

    if not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return False
    import torch

    return torch.cuda.is_available()


@ANOMALY_MODELS.register("gmm")
class GmmAnomalyModel(AnomalyModel):
    """sklearn GaussianMixture (paper: k=3, full covariance, k-means init, max_iter 250,
    reg_covar 1e-6), scored by a vectorised log-likelihood."""

    def __init__(self, n_components: int = 3, covariance_type: str = "full", max_iter: int = 250,
                 reg_covar: float = 1e-6, seed: int = 0):
        self.n_components, self.covariance_type, self.max_iter = n_components, covariance_type, max_iter
        self.reg_covar, self.seed = reg_covar, seed
        self.weights_ = self.means_ = self.precisions_cholesky_ = None
        self._scorer = None

    def fit(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> "GmmAnomalyModel":
        from sklearn.mixture import GaussianMixture

        if self.covariance_type != "full":
            raise ValueError("only full covariance is supported by the vectorised scorer")
        gm = GaussianMixture(n_components=self.n_components, covariance_type="full", max_iter=self.max_iter,
                             reg_covar=self.reg_covar, init_params="kmeans", random_state=self.seed).fit(X)
        self.sklearn_ = gm
        self.weights_, self.means_, self.precisions_cholesky_ = gm.weights_, gm.means_, gm.precisions_cholesky_
        self._scorer = None
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        if self._scorer is None:
            args = (self.weights_, self.means_, self.precisions_cholesky_)
            self._scorer = TorchGaussianScorer(*args, device="cuda") if _assigned_gpu() else FastGaussianScorer(*args)
        return self._scorer(X)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"weights": self.weights_, "means": self.means_, "precisions_cholesky": self.precisions_cholesky_}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], params: Dict) -> "GmmAnomalyModel":
        m = cls(**params)
        m.weights_, m.means_, m.precisions_cholesky_ = (arrays["weights"], arrays["means"],
                                                         arrays["precisions_cholesky"])
        return m

    @classmethod
    def check_arrays(cls, arrays, params, dim, where) -> None:
        w, mu, pc = arrays.get("weights"), arrays.get("means"), arrays.get("precisions_cholesky")
        if w is None or mu is None or pc is None:
            raise ModelFileError(f"{where['arrays']}: a gmm needs weights, means, precisions_cholesky; "
                                 f"has {', '.join(sorted(arrays))}")
        k = w.shape[0]
        if mu.shape != (k, dim) or pc.shape != (k, dim, dim):
            raise ModelFileError(f"{where['model']}: arrays do not fit {k} components of dim {dim} "
                                 f"(means {mu.shape}, precisions_cholesky {pc.shape})")


@ANOMALY_MODELS.register("ocsvm")
class OcsvmAnomalyModel(AnomalyModel):
    """One-class SVM (RBF) for the ablation; decision_function as the score (higher = normal).

    ``gamma="scale"`` (scikit-learn's rule, 1 / (D * var(X))) is resolved at fit into ``gamma_``,
    stored with the arrays: a fixed gamma of 1 makes every kernel value 0 on thousands of
    dimensions, and every video the same score."""

    def __init__(self, nu: float = 0.1, gamma: Union[str, float] = "scale", seed: int = 0):
        self.nu, self.gamma, self.seed = nu, gamma, seed

    def fit(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> "OcsvmAnomalyModel":
        from sklearn.svm import OneClassSVM

        X = np.asarray(X, np.float64)
        self.gamma_ = (1.0 / (X.shape[1] * max(float(X.var()), 1e-12)) if self.gamma == "scale"
                       else float(self.gamma))
        svm = OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma_).fit(X)
        self.support_vectors_ = svm.support_vectors_
        self.dual_coef_ = svm.dual_coef_[0]
        self.intercept_ = np.atleast_1d(svm.intercept_)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)
        sq = (X * X).sum(1)[:, None] + (self.support_vectors_ ** 2).sum(1)[None, :] - 2 * X @ self.support_vectors_.T
        return np.exp(-self.gamma_ * np.maximum(sq, 0)) @ self.dual_coef_ + self.intercept_[0]

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_, "intercept": self.intercept_,
                "gamma": np.array(self.gamma_)}

    @classmethod
    def from_arrays(cls, arrays, params) -> "OcsvmAnomalyModel":
        m = cls(**params)
        m.support_vectors_, m.dual_coef_, m.intercept_ = arrays["support_vectors"], arrays["dual_coef"], arrays["intercept"]
        # files written before gamma_ was kept apart hold the resolved number in params
        m.gamma_ = float(arrays["gamma"]) if "gamma" in arrays else float(m.gamma)
        return m
