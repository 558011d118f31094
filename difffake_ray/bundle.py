"""A detector bundle: one folder, any URI, everything that turns a video into a verdict.

    backbone.pt    the exported embedder (torch.load weights_only; its input spec inside)
    model.json     the anomaly model's meta (combination, L2, dimension) ...
    model.npz      ... and its arrays (no pickle)
    bundle.json    format, SHA-256 of each file, the frame and pair settings, the calibration
                   from held-out real videos, the versions, and a short model card

Loading checks every file against its recorded hash (a tampered or swapped file fails, named)
and that the backbone's features are what the anomaly model was fitted on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any, Dict, Optional

from . import storage
from .config import Config, ExtractConfig

BUNDLE_FORMAT = "difffake-detector-v1"
BACKBONE_FILE, BUNDLE_FILE = "backbone.pt", "bundle.json"


class BundleError(ValueError):
    """A bundle that is incomplete, tampered with or inconsistent: named, in one line."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(backbone_uri: str, model_uri: str, out_uri: str, cfg: Config,
                 calibration: Optional[Dict[str, Any]] = None, card: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Copy the backbone and the anomaly model into ``out_uri`` with ``bundle.json``."""
    from .adm.persistence import ARRAYS_FILE, META_FILE, load_model
    from .backbone import load_embedder_file
    from .runtime import versions

    embedder = load_embedder_file(backbone_uri)  # both checked before anything is written
    _, model_meta = load_model(model_uri)
    if int(embedder["meta"]["feature_dim"]) != int(model_meta["embedding_dim"]):
        raise BundleError(f"{backbone_uri} gives {embedder['meta']['feature_dim']}-d features, {model_uri} was "
                          f"fitted on {model_meta['embedding_dim']}-d ones")
    files = {BACKBONE_FILE: storage.read_bytes(backbone_uri),
             META_FILE: storage.read_bytes(storage.join(model_uri, META_FILE)),
             ARRAYS_FILE: storage.read_bytes(storage.join(model_uri, ARRAYS_FILE))}
    for name, data in files.items():
        storage.write_bytes_atomic(storage.join(out_uri, name), data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {name: _sha256(data) for name, data in files.items()},
        "extract": dataclasses.asdict(cfg.extract),
        "score": {"pairs_per_video": cfg.score.pairs_per_video, "min_frame_gap": cfg.score.min_frame_gap,
                  "seed": cfg.score.seed},
        "backbone": {k: embedder["meta"].get(k) for k in ("arch", "feature_dim", "input", "weights")},
        "anomaly_model": {k: model_meta.get(k) for k in ("anomaly_model", "combination", "l2_normalize",
                                                          "embedding_dim", "n_training_pairs", "n_fitted_videos")},
        "calibration": calibration,
        "model_card": card or {},
        "versions": versions(),
    }
    storage.write_json_atomic(storage.join(out_uri, BUNDLE_FILE), manifest)
    return manifest


def verified_manifest(uri: str) -> Dict[str, Any]:
    """``bundle.json``, once every file it lists is there with its recorded SHA-256."""
    from .adm.persistence import ARRAYS_FILE, META_FILE

    try:
        manifest = storage.read_json(storage.join(uri, BUNDLE_FILE))
    except FileNotFoundError:
        raise BundleError(f"{uri}: no {BUNDLE_FILE} (write a bundle with `python cli.py bundle`)") from None
    except ValueError as exc:
        raise BundleError(f"{storage.join(uri, BUNDLE_FILE)}: not valid JSON ({exc})") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{storage.join(uri, BUNDLE_FILE)}: format {manifest.get('format')!r}, "
                          f"expected {BUNDLE_FORMAT}")
    if set(manifest.get("files", {})) != {BACKBONE_FILE, META_FILE, ARRAYS_FILE}:
        raise BundleError(f"{storage.join(uri, BUNDLE_FILE)}: lists {sorted(manifest.get('files', {}))}, "
                          f"expected {BACKBONE_FILE}, {META_FILE}, {ARRAYS_FILE}")
    for name, digest in manifest["files"].items():
        path = storage.join(uri, name)
        try:
            data = storage.read_bytes(path)
        except FileNotFoundError:
            raise BundleError(f"{path}: missing from the bundle") from None
        if _sha256(data) != digest:
            raise BundleError(f"{path}: its SHA-256 differs from the one in {BUNDLE_FILE} "
                              f"(the file was changed after bundling)")
    return manifest


class Detector:
    """A loaded bundle: the embedder, the anomaly model, the settings and the calibration."""

    def __init__(self, uri: str, device: Optional[str] = None):
        from .adm.persistence import ModelFileError, load_model
        from .embed import CropEmbedder

        self.uri = uri
        self.manifest = verified_manifest(uri)
        try:
            self.model, self.model_meta = load_model(uri)
        except ModelFileError as exc:
            raise BundleError(str(exc)) from None
        self.embedder = CropEmbedder(storage.join(uri, BACKBONE_FILE), batch_size=32, device=device)
        if self.embedder.dim != int(self.model_meta["embedding_dim"]):
            raise BundleError(f"{uri}: backbone features are {self.embedder.dim}-d, the anomaly model's "
                              f"{self.model_meta['embedding_dim']}-d")
        self.extract_config = ExtractConfig(**self.manifest["extract"])
        self.score_settings = self.manifest["score"]
        self.calibration = self.manifest.get("calibration")

    @functools.cached_property
    def extractor(self):
        """The face extractor with the bundle's frame settings (built on first use)."""
        from .faces.extractor import FaceExtractor

        return FaceExtractor(self.extract_config)
