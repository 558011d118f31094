"""Fitted anomaly models on disk without pickle: ``model.npz`` (arrays) + ``model.json`` (kind,
parameters, combination, backbone fingerprint, embedding dim). npz is read with
``allow_pickle=False``."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, Tuple

import numpy as np

from .. import storage
from .models import create_anomaly_model, ANOMALY_MODELS

ARRAYS_FILE = "model.npz"
META_FILE = "model.json"


def save_model(model, out_uri: str, meta: Dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in model.to_arrays().items()})
    storage.write_bytes_atomic(storage.join(out_uri, ARRAYS_FILE), buf.getvalue())
    storage.write_json_atomic(storage.join(out_uri, META_FILE), dict(meta, params=model.params))


def load_model(uri: str) -> Tuple[Any, Dict[str, Any]]:
    try:
        meta = storage.read_json(storage.join(uri, META_FILE))
    except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: no {META_FILE} (write one with `python cli.py fit`)") from None
    with np.load(io.BytesIO(storage.read_bytes(storage.join(uri, ARRAYS_FILE))), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cls = ANOMALY_MODELS.get(meta["anomaly_model"])
    return cls.from_arrays(arrays, meta["params"]), meta


__all__ = ["save_model", "load_model", "create_anomaly_model"]
