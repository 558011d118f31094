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
import json
import sys
from typing import Any, Dict, Optional

import numpy as np

from . import storage
from .adm.pairs import PAIRINGS
from .config import Config, ExtractConfig, ScoreConfig
from .faces.extractor import EXTRACTOR_VERSION, boxes_moved_since

BUNDLE_FORMAT = "difffake-detector-v1"
BACKBONE_FILE, BUNDLE_FILE = "backbone.pt", "bundle.json"
MAX_BUNDLE_JSON_BYTES = 16 << 20  # bundle.json is ~100 KB: a larger one is not read on
SELF_HASH = "bundle_sha256"  # bundle.json's hash of its own other fields: an edited threshold shows
MIN_CALIBRATION_REALS = 20  # fewer, and every verdict says its threshold rests on too few videos


class BundleError(ValueError):
    """A bundle that is incomplete, tampered with or inconsistent: named, in one line."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def self_hash(manifest: Dict[str, Any]) -> str:
    """The SHA-256 of bundle.json's fields other than its own hash, in canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != SELF_HASH}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8"))


def write_bundle(backbone_uri: str, model_uri: str, out_uri: str, cfg: Config,
                 calibration: Optional[Dict[str, Any]] = None, card: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Copy the backbone and the anomaly model into ``out_uri`` with ``bundle.json``. The caller
    (``pipeline.bundle.run_bundle``) has checked that the parts belong together."""
    from .adm.persistence import ARRAYS_FILE, MODEL_META_FILE, load_model
    from .backbone import load_embedder_file
    from .runtime import versions

    embedder = load_embedder_file(backbone_uri)  # both checked before anything is written
    _, model_meta = load_model(model_uri)
    if int(embedder["meta"]["feature_dim"]) != int(model_meta["embedding_dim"]):
        raise BundleError(f"{backbone_uri} gives {embedder['meta']['feature_dim']}-d embeddings, {model_uri} "
                          f"scores {model_meta['embedding_dim']}-d ones")
    files = {BACKBONE_FILE: storage.read_bytes(backbone_uri),
             MODEL_META_FILE: storage.read_bytes(storage.join(model_uri, MODEL_META_FILE)),
             ARRAYS_FILE: storage.read_bytes(storage.join(model_uri, ARRAYS_FILE))}
    for name, data in files.items():
        storage.write_bytes_atomic(storage.join(out_uri, name), data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {name: _sha256(data) for name, data in files.items()},
        "sizes": {name: len(data) for name, data in files.items()},
        "extract": dataclasses.asdict(cfg.extract),
        "extractor_version": EXTRACTOR_VERSION,
        "score": {"pairs_per_video": cfg.score.pairs_per_video, "min_frame_gap": cfg.score.min_frame_gap,
                  "seed": cfg.score.seed, "min_faces": cfg.score.min_faces, "pairing": cfg.score.pairing},
        "backbone": {k: embedder["meta"].get(k) for k in ("arch", "feature_dim", "input", "weights")},
        "anomaly_model": {k: model_meta.get(k) for k in ("anomaly_model", "combination", "l2_normalize",
                                                          "embedding_dim", "pair_feature_dim", "n_training_pairs", "n_fitted_videos")},
        "calibration": calibration,
        "model_card": card or {},
        "versions": versions(),
    }
    manifest[SELF_HASH] = self_hash(manifest)
    storage.write_json_atomic(storage.join(out_uri, BUNDLE_FILE), manifest)
    return manifest


# bundle.json's fields and their types: a missing, null or mistyped one is named at load
_FIELDS = {"format": str, "files": dict, "sizes": dict, "extract": dict, "score": dict, "backbone": dict,
           "anomaly_model": dict, SELF_HASH: str}
_SCORE_FIELDS = {"pairs_per_video": int, "min_frame_gap": int, "seed": int}


def check_manifest(where: str, manifest: Any) -> None:
    """bundle.json validated as a schema: its fields and types, its own hash, and a calibration
    whose thresholds and quantiles are finite numbers in order. Raises BundleError naming the field."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: not a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: format {manifest.get('format')!r}, expected {BUNDLE_FORMAT}")
    for key, kind in _FIELDS.items():
        if not isinstance(manifest.get(key), kind):
            what = "missing" if key not in manifest else f"{type(manifest[key]).__name__}, expected {kind.__name__}"
            hint = " (written before bundles hashed themselves: bundle it again)" if key == SELF_HASH else ""
            raise BundleError(f"{where}: field {key!r} is {what}{hint}")
    for key, kind in _SCORE_FIELDS.items():
        value = manifest["score"].get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BundleError(f"{where}: field 'score.{key}' is {value!r}, expected an integer")
    if manifest["score"].get("pairing", "random") not in PAIRINGS:
        raise BundleError(f"{where}: field 'score.pairing' is {manifest['score']['pairing']!r}, expected one of "
                          f"{', '.join(PAIRINGS)}")
    for name, digest in manifest["files"].items():
        if not isinstance(digest, str) or not isinstance(manifest["sizes"].get(name), int):
            raise BundleError(f"{where}: field 'files.{name}' or 'sizes.{name}' is missing or mistyped")
    if manifest[SELF_HASH] != self_hash(manifest):
        raise BundleError(f"{where}: its content differs from its own {SELF_HASH} (the file was edited after "
                          f"bundling: a threshold, a setting); bundle it again")
    calibration = manifest.get("calibration")
    if calibration is not None:
        check_calibration(where, calibration)


def check_calibration(where: str, calibration: Any) -> None:
    import math

    def numbers(values, name):
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise BundleError(f"{where}: calibration {name} must be a list of finite numbers")

    if not isinstance(calibration, dict) or not isinstance(calibration.get("thresholds"), dict) \
            or not isinstance(calibration.get("quantiles"), dict) or not isinstance(calibration.get("n_real"), int):
        raise BundleError(f"{where}: calibration lacks thresholds, quantiles or n_real")
    numbers(list(calibration["thresholds"].values()), "thresholds")
    domain = calibration.get("domain")
    if domain is not None:
        if not isinstance(domain, dict):
            raise BundleError(f"{where}: calibration domain is not an object")
        for name in ("mean", "scale", "loo_distances"):
            numbers(domain.get(name), f"domain {name}")
        numbers([domain.get("limit")], "domain limit")
        if len(domain["mean"]) != len(domain["scale"]):
            raise BundleError(f"{where}: calibration domain mean and scale differ in length")
    q = calibration["quantiles"]
    numbers(q.get("levels"), "quantile levels")
    numbers(q.get("scores"), "quantile scores")
    if len(q["levels"]) != len(q["scores"]) or any(b < a for a, b in zip(q["scores"], q["scores"][1:])):
        raise BundleError(f"{where}: calibration quantiles are not one increasing score per level")


def verified_manifest(uri: str) -> Dict[str, Any]:
    """``bundle.json``, validated, once every file it lists is there with its recorded size and
    SHA-256 (each read no further than its recorded size)."""
    from .adm.persistence import ARRAYS_FILE, MODEL_META_FILE

    where = storage.join(uri, BUNDLE_FILE)
    try:
        manifest = json.loads(storage.read_bytes_at_most(where, MAX_BUNDLE_JSON_BYTES).decode("utf-8"))
    except FileNotFoundError:
        try:
            storage.confirm_missing(where)
        except ConnectionError as exc:
            raise BundleError(str(exc)) from None
        raise BundleError(f"{uri}: no {BUNDLE_FILE} (write a bundle with `python cli.py bundle`)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # noqa: BLE001 - an unreachable URL, a refused connection: named in one line
        raise BundleError(f"{where}: cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    check_manifest(where, manifest)
    if set(manifest["files"]) != {BACKBONE_FILE, MODEL_META_FILE, ARRAYS_FILE}:
        raise BundleError(f"{where}: lists {sorted(manifest['files'])}, expected {BACKBONE_FILE}, {MODEL_META_FILE}, "
                          f"{ARRAYS_FILE}")
    for name, digest in manifest["files"].items():
        path = storage.join(uri, name)
        try:
            data = storage.read_bytes_at_most(path, manifest["sizes"][name])
        except FileNotFoundError:
            raise BundleError(f"{path}: missing from the bundle") from None
        except storage.TooLargeError as exc:
            raise BundleError(str(exc)) from None
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

        from .adm.persistence import load_model
        from .storage import ModelFileError

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
        try:
            self.extract_config = ExtractConfig(**self.manifest["extract"])
        except (TypeError, ValueError) as exc:  # an unknown or out-of-range setting
            raise BundleError(f"{storage.join(uri, BUNDLE_FILE)}: field 'extract': {exc}") from None
        made_by = self.manifest.get("extractor_version", 1)  # bundles written before it: version 1
        if not isinstance(made_by, int) or boxes_moved_since(made_by, self.extract_config.detector):
            raise BundleError(f"{storage.join(uri, BUNDLE_FILE)}: calibrated on faces of extractor version "
                              f"{made_by!r}, whose {self.extract_config.detector} boxes have moved since (version "
                              f"{EXTRACTOR_VERSION}): extract, embed, fit and bundle again")
        # bundles written before score.min_faces: the default
        # bundles written before a setting existed score as they were calibrated: with its old value
        self.score_settings = {"min_faces": ScoreConfig().min_faces, "pairing": "random", **self.manifest["score"]}
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
            self.close(now=True)
            raise

    def check_fpr(self, fpr: float) -> None:
        """Refuse a false-positive rate the calibration has no threshold for (before any video)."""
        if self.calibration and f"{fpr:g}" not in self.calibration["thresholds"]:
            raise BundleError(f"--fpr {fpr:g}: the bundle {self.uri} has thresholds for "
                              f"{', '.join(self.calibration['thresholds'])} only")

    def calibration_note(self) -> str:
        """What every verdict of this bundle says about its calibration: on what footage, how many
        videos, and when they are too few for its thresholds."""
        if not self.calibration:
            return "uncalibrated: no threshold, no verdict"
        n = int(self.calibration["n_real"])
        footage = self.calibration.get("calibrated_on") or {}
        kinds = ", ".join(f"{k} {v}" for k, v in sorted((footage.get("real_videos_by_dataset") or {}).items()))
        note = (f"calibrated on {n} real videos" + (f" ({kinds})" if kinds else "")
                + ("; synthetic footage: not for real videos" if footage.get("synthetic") else ""))
        if n < MIN_CALIBRATION_REALS:
            note = (f"calibrated on only {n} real videos (fewer than {MIN_CALIBRATION_REALS}): its thresholds are "
                    f"rough, and false alarms on new real videos may be far above the stated rate"
                    + ("; synthetic footage: not for real videos" if footage.get("synthetic") else ""))
        return note

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

    def close(self, now: bool = False) -> None:
        """Stop the worker: once its work is done, or ``now`` (an interruption: the backbone may
        still be loading, which would otherwise hold the exit for seconds)."""
        if self._pool is None:
            return
        if now:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
        self._pool.shutdown(wait=not now, cancel_futures=True)
        self._pool = None

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(now=exc_type is not None)

    @functools.cached_property
    def extractor(self):
        """The face extractor with the bundle's frame settings (built on first use)."""
        from .faces.extractor import FaceExtractor

        return FaceExtractor(self.extract_config)
