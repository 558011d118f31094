"""Anomaly models (registry), scikit-learn shaped: ``fit(X)``, ``score_samples(X)`` (higher =
more normal = more real), ``to_arrays()`` / ``from_arrays()`` for pickle-free persistence."""

from __future__ import annotations

from typing import Dict

import numpy as np

from ..registry import Registry

ANOMALY_MODELS = Registry("anomaly model", modules={"autoencoder": "difffake_ray.adm.autoencoder"})


def create_anomaly_model(name: str, **kwargs):
    return ANOMALY_MODELS.create(name, **kwargs)


def gaussian_log_likelihood(X: np.ndarray, weights: np.ndarray, means: np.ndarray,
                            precisions_cholesky: np.ndarray) -> np.ndarray:
    """Log-likelihood (N,) of X (N, D) under a full-covariance GMM, vectorised over components.

    log p(x) = logsumexp_k [log w_k - D/2 log 2pi + log det L_k - 1/2 ||(x - mu_k) L_k||^2] with
    L_k the Cholesky factor of the precision matrix (scikit-learn's parameterisation).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    k = means.shape[0]
    log_det = np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)  # (K,)
    log_prob = np.empty((n, k))
    for c in range(k):  # K is 3: each iteration is one (N, D) x (D, D) matrix product
        y = X @ precisions_cholesky[c] - means[c] @ precisions_cholesky[c]
        log_prob[:, c] = np.einsum("ij,ij->i", y, y)
    log_prob = -0.5 * (d * np.log(2 * np.pi) + log_prob) + log_det + np.log(weights)
    m = log_prob.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(log_prob - m).sum(axis=1, keepdims=True)))[:, 0]


@ANOMALY_MODELS.register("gmm")
class GmmAnomalyModel:
    """sklearn GaussianMixture (paper: k=3, full covariance, k-means init, max_iter 250,
    reg_covar 1e-6), scored by a vectorised log-likelihood."""

    def __init__(self, n_components: int = 3, covariance_type: str = "full", max_iter: int = 250,
                 reg_covar: float = 1e-6, seed: int = 0, **_: object):
        self.params = dict(n_components=n_components, covariance_type=covariance_type, max_iter=max_iter,
                           reg_covar=reg_covar, seed=seed)
        self.weights_ = self.means_ = self.precisions_cholesky_ = None

    def fit(self, X: np.ndarray) -> "GmmAnomalyModel":
        from sklearn.mixture import GaussianMixture

        if self.params["covariance_type"] != "full":
            raise ValueError("only full covariance is supported by the vectorised scorer")
        gm = GaussianMixture(n_components=self.params["n_components"], covariance_type="full",
                             max_iter=self.params["max_iter"], reg_covar=self.params["reg_covar"],
                             init_params="kmeans", random_state=self.params["seed"]).fit(X)
        self.sklearn_ = gm
        self.weights_, self.means_, self.precisions_cholesky_ = gm.weights_, gm.means_, gm.precisions_cholesky_
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return gaussian_log_likelihood(X, self.weights_, self.means_, self.precisions_cholesky_)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"weights": self.weights_, "means": self.means_, "precisions_cholesky": self.precisions_cholesky_}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], params: Dict) -> "GmmAnomalyModel":
        m = cls(**params)
        m.weights_, m.means_, m.precisions_cholesky_ = (arrays["weights"], arrays["means"],
                                                         arrays["precisions_cholesky"])
        return m


@ANOMALY_MODELS.register("ocsvm")
class OcsvmAnomalyModel:
    """One-class SVM (RBF) for the ablation; decision_function as the score (higher = normal)."""

    def __init__(self, nu: float = 0.1, gamma: float = 1.0, seed: int = 0, **_: object):
        self.params = dict(nu=nu, gamma=gamma, seed=seed)

    def fit(self, X: np.ndarray) -> "OcsvmAnomalyModel":
        from sklearn.svm import OneClassSVM

        svm = OneClassSVM(kernel="rbf", nu=self.params["nu"], gamma=self.params["gamma"]).fit(X)
        self.support_vectors_ = svm.support_vectors_
        self.dual_coef_ = svm.dual_coef_[0]
        self.intercept_ = np.atleast_1d(svm.intercept_)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)
        sq = (X * X).sum(1)[:, None] + (self.support_vectors_ ** 2).sum(1)[None, :] - 2 * X @ self.support_vectors_.T
        return np.exp(-self.params["gamma"] * np.maximum(sq, 0)) @ self.dual_coef_ + self.intercept_[0]

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_, "intercept": self.intercept_}

    @classmethod
    def from_arrays(cls, arrays, params) -> "OcsvmAnomalyModel":
        m = cls(**params)
        m.support_vectors_, m.dual_coef_, m.intercept_ = arrays["support_vectors"], arrays["dual_coef"], arrays["intercept"]
        return m
