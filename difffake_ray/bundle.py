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
import sys
from typing import Any, Dict, Optional

import numpy as np

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


# The backbone of a Detector lives in one worker process: these run there.
_worker_embedder = None


def _load_embedder(backbone_uri: str, device: Optional[str], expected_dim: int):
    from .embed import CropEmbedder

    embedder = CropEmbedder(backbone_uri, batch_size=32, device=device)
    if embedder.dim != expected_dim:
        raise BundleError(f"{backbone_uri}: gives {embedder.dim}-d features, the anomaly model's are {expected_dim}-d")
    return embedder


def _load_in_worker(backbone_uri: str, device: Optional[str], expected_dim: int) -> None:
    global _worker_embedder
    _worker_embedder = _load_embedder(backbone_uri, device, expected_dim)


def _embed_in_worker(faces):
    return _worker_embedder.embed_faces(faces)


def _spawnable() -> bool:
    """Whether a spawned process can start here: it re-imports the main module from its file,
    which a script read from stdin (``python -``) does not have; ``-c`` and a REPL have none, and are fine."""
    import os

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.isfile(main_file)


class Detector:
    """A loaded bundle: the embedder, the anomaly model, the settings and the calibration.

    Everything is checked here (hashes, the dimensions the manifest records). The backbone is
    loaded in one worker process started at once: importing torch and timm is most of a cold
    start (~6 s on 2 cores), and this process meanwhile decodes the first video and finds its
    faces on the other core (a thread would share the GIL with the import). Crops go to the
    worker and embeddings come back (a few hundred KB a video). ``worker=False`` (or a worker that
    cannot start) loads the backbone in this process. Use as a context manager, or ``close()``."""

    def __init__(self, uri: str, device: Optional[str] = None, worker: bool = True):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from .adm.persistence import ModelFileError, load_model

        self.uri = uri
        self.manifest = verified_manifest(uri)
        try:
            self.model, self.model_meta = load_model(uri)
        except ModelFileError as exc:
            raise BundleError(str(exc)) from None
        self.dim = int(self.model_meta["embedding_dim"])
        recorded = (self.manifest.get("backbone") or {}).get("feature_dim")
        if recorded is not None and int(recorded) != self.dim:
            raise BundleError(f"{uri}: backbone features are {recorded}-d, the anomaly model's {self.dim}-d")
        self.extract_config = ExtractConfig(**self.manifest["extract"])
        self.score_settings = self.manifest["score"]
        self.calibration = self.manifest.get("calibration")
        self._device, self._pool, self._local = device, None, None
        if worker and _spawnable():
            # spawn, not fork: this process may already hold threads (Arrow's pools)
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._loaded = self._pool.submit(_load_in_worker, storage.join(uri, BACKBONE_FILE), device, self.dim)
        try:
            # every combination keeps the embedding's dimension: one throw-away row builds the
            # model's scorer (its BLAS factors) while the worker loads
            self.model.score_samples(np.zeros((1, self.dim)))
        except BaseException:
            self.close()
            raise

    def wait_until_loaded(self) -> None:
        """Block until the backbone is loaded; its load error (a BundleError, a bad file) is raised here."""
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is not None:
            try:
                self._loaded.result()
                return
            except BrokenProcessPool:
                self._drop_worker("stopped while loading it")
        if self._local is None:
            self._local = _load_embedder(storage.join(self.uri, BACKBONE_FILE), self._device, self.dim)

    def embed_faces(self, faces):
        """Faces rows (schema.FACES_SCHEMA) -> embeddings rows, computed in the worker."""
        from concurrent.futures.process import BrokenProcessPool

        self.wait_until_loaded()
        if self._pool is not None:
            try:
                return self._pool.submit(_embed_in_worker, faces).result()
            except BrokenProcessPool:
                self._drop_worker("died")
                self.wait_until_loaded()
        return self._local.embed_faces(faces)

    def _drop_worker(self, what: str) -> None:
        print(f"detect: the worker process for {BACKBONE_FILE} {what}; going on in this process",
              file=sys.stderr, flush=True)
        self._pool.shutdown(wait=False)
        self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @functools.cached_property
    def extractor(self):
        """The face extractor with the bundle's frame settings (built on first use)."""
        from .faces.extractor import FaceExtractor

        return FaceExtractor(self.extract_config)
