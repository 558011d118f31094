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
    storage.write_json_atomic(storage.join(out_uri, MODEL_META_FILE), dict(meta, params=model.get_params()))


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
    if meta.get("anomaly_model") in ANOMALY_MODELS:
        arrays = ANOMALY_MODELS.get(meta["anomaly_model"]).upgrade_arrays(arrays)
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
    cls = ANOMALY_MODELS.get(meta["anomaly_model"])
    if not isinstance(meta["params"], dict):
        raise ModelFileError(f"{uri}/{MODEL_META_FILE}: params is not an object")
    unknown = sorted(set(meta["params"]) - set(cls.param_names()))
    if unknown:
        raise ModelFileError(f"{uri}/{MODEL_META_FILE}: {meta['anomaly_model']} takes no parameter "
                             f"{', '.join(unknown)} (it takes {', '.join(cls.param_names())})")
    where = {"model": uri, "arrays": f"{uri}/{ARRAYS_FILE}", "meta": f"{uri}/{MODEL_META_FILE}"}
    cls.check_arrays(arrays, meta["params"], pair_feature_dim(meta), where)


__all__ = ["save_model", "load_model", "create_anomaly_model"]
