"""Fitted anomaly models on disk without pickle: ``model.npz`` (arrays) + ``model.json`` (kind,
parameters, combination, backbone fingerprint, the width of the embeddings it scores and of their
pair features). npz is read with ``allow_pickle=False``."""

from __future__ import annotations

import io
from typing import Any, Dict, Tuple

import numpy as np

from .. import storage
from ..storage import ModelFileError
from .models import create_anomaly_model, ANOMALY_MODELS

ARRAYS_FILE = "model.npz"
MODEL_META_FILE = "model.json"


def save_model(model, out_uri: str, meta: Dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in model.to_arrays().items()})
    storage.write_bytes_atomic(storage.join(out_uri, ARRAYS_FILE), buf.getvalue())
    storage.write_json_atomic(storage.join(out_uri, MODEL_META_FILE), dict(meta, params=model.params))


def load_model(uri: str) -> Tuple[Any, Dict[str, Any]]:
    """-> (model, meta). Every way a model folder can be wrong fails here, in one line naming the
    file and the cause: missing, unreadable, not pickle-free, keys or shapes missing, non-finite."""
    import json
    import zipfile

    meta_uri, arrays_uri = storage.join(uri, MODEL_META_FILE), storage.join(uri, ARRAYS_FILE)
    try:
        meta = storage.read_json(meta_uri)
    except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: no {MODEL_META_FILE} (write one with `python cli.py fit`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{meta_uri}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{meta_uri}: not a JSON object")
    try:
        with np.load(io.BytesIO(storage.read_bytes(arrays_uri)), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{arrays_uri}: not found (write it with `python cli.py fit`)") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:  # truncated, or holds pickled objects
        raise ModelFileError(f"{arrays_uri}: not a readable pickle-free npz ({str(exc).splitlines()[0]})") from None
    if meta.get("anomaly_model") == "regional_gmm" and "means" in arrays and "means_0" not in arrays:
        # written before the texture / semantic split: one block per region, the same arrays as level 0
        arrays["means_0"], arrays["precisions_cholesky_0"] = arrays.pop("means"), arrays.pop("precisions_cholesky")
    check_model(uri, meta, arrays)
    cls = ANOMALY_MODELS.get(meta["anomaly_model"])
    return cls.from_arrays(arrays, meta["params"]), meta


def model_fingerprint(uri: str) -> str:
    """A short hash of the model's two files: what a score output records it was made with."""
    import hashlib

    h = hashlib.sha256()
    for name in (MODEL_META_FILE, ARRAYS_FILE):
        h.update(storage.read_bytes(storage.join(uri, name)))
    return h.hexdigest()[:16]


def pair_feature_dim(meta: Dict[str, Any]) -> int:
    """The width of the pair features a model was fitted on (``embedding_dim``, the width of the
    embeddings it scores, is what a table is checked against). Files written before the width was
    recorded: every combination then was element-wise, so the two were the same."""
    return int(meta.get("pair_feature_dim", meta["embedding_dim"]))


def check_model(uri: str, meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
    """Fail at load, naming the file, rather than mid-job with a shape error."""
    from .combinations import COMBINATIONS

    for key in ("anomaly_model", "combination", "embedding_dim", "l2_normalize", "params"):
        if key not in meta:
            raise ModelFileError(f"{uri}/{MODEL_META_FILE}: no {key!r} (not written by `cli.py fit`?)")
    for key, a in arrays.items():  # a NaN here would give NaN scores for every video
        if np.issubdtype(a.dtype, np.number) and not np.all(np.isfinite(a)):
            raise ModelFileError(f"{uri}/{ARRAYS_FILE}: {key} holds {int(np.sum(~np.isfinite(a)))} non-finite "
                                 f"value(s) (NaN/inf)")
    if meta["anomaly_model"] not in ANOMALY_MODELS:
        raise ModelFileError(f"{uri}/{MODEL_META_FILE}: unknown anomaly model {meta['anomaly_model']!r}; "
                             f"known: {', '.join(ANOMALY_MODELS.names())}")
    if meta["combination"] not in COMBINATIONS:
        raise ModelFileError(f"{uri}/{MODEL_META_FILE}: unknown combination {meta['combination']!r}; "
                             f"known: {', '.join(COMBINATIONS.names())}")
    dim = pair_feature_dim(meta)
    if meta["anomaly_model"] == "gmm":
        w, mu, pc = arrays.get("weights"), arrays.get("means"), arrays.get("precisions_cholesky")
        if w is None or mu is None or pc is None:
            raise ModelFileError(f"{uri}/{ARRAYS_FILE}: a gmm needs weights, means, precisions_cholesky; "
                                 f"has {', '.join(sorted(arrays))}")
        k = w.shape[0]
        if mu.shape != (k, dim) or pc.shape != (k, dim, dim):
            raise ModelFileError(f"{uri}: arrays do not fit {k} components of dim {dim} "
                                 f"(means {mu.shape}, precisions_cholesky {pc.shape})")
    if meta["anomaly_model"] == "regional_gmm":
        _check_regional(uri, meta, arrays, dim)


def _check_regional(uri: str, meta: Dict[str, Any], arrays: Dict[str, np.ndarray], dim: int) -> None:
    """The block layout the model's params make of ``dim`` columns, against the arrays' shapes."""
    layout = ANOMALY_MODELS.get("regional_gmm")(**meta["params"])
    r = layout.params["n_regions"]
    if r < 1 or dim % r:
        raise ModelFileError(f"{uri}: dim {dim} does not split into {r} regions")
    try:
        widths = layout.level_widths(dim // r)
    except ValueError as e:
        raise ModelFileError(f"{uri}/{MODEL_META_FILE}: {e}") from None
    levels = range(len(widths))
    need = ["scale", "loc", "spread", "reg_covar", "weights"] + [f"{name}_{lvl}" for lvl in levels
                                                                for name in ("means", "precisions_cholesky")]
    if any(k not in arrays for k in need):
        raise ModelFileError(f"{uri}/{ARRAYS_FILE}: a regional_gmm of {len(widths)} level(s) needs {', '.join(need)}; "
                             f"has {', '.join(sorted(arrays))}")
    b, k = r * len(widths), arrays["weights"].shape[-1]
    shapes = {"scale": (dim,), "loc": (b,), "spread": (b,), "reg_covar": (b,), "weights": (b, k)}
    for lvl, w in zip(levels, widths):
        shapes.update({f"means_{lvl}": (r, k, w), f"precisions_cholesky_{lvl}": (r, k, w, w)})
    if ("between_var" in arrays) != ("within_var" in arrays):
        raise ModelFileError(f"{uri}/{ARRAYS_FILE}: holds one of between_var and within_var without the other")
    # files written before the few-pairs standardisation have neither: scored as before
    shapes.update({name: (b,) for name in ("between_var", "within_var") if name in arrays})
    wrong = [f"{name} {arrays[name].shape}" for name, shape in shapes.items() if arrays[name].shape != shape]
    if wrong:
        raise ModelFileError(f"{uri}: arrays do not fit {r} regions x {len(widths)} level(s) {widths} of {k} "
                             f"components in dim {dim} ({', '.join(wrong)})")


__all__ = ["save_model", "load_model", "create_anomaly_model"]
