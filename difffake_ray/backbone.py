"""The timm backbone: creation (ImageNet weights when they can be had), the detector network used
in training, and export/load of the embedding network (classifier dropped).

Exported files are plain ``torch.save`` dicts of tensors and primitives, loaded with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from . import storage

log = logging.getLogger(__name__)

NORM_MEAN = (0.5, 0.5, 0.5)
NORM_STD = (0.5, 0.5, 0.5)


def create_backbone(name: str, pretrained: bool = True, weights_path: Optional[str] = None,
                    num_classes: int = 1) -> nn.Module:
    """timm model ``name`` with a ``num_classes`` head (0: pooled features only).

    ``pretrained``: ImageNet weights through timm when reachable; otherwise a clear warning and
    random init. ``weights_path``: a local state dict (any fsspec URI) loaded over it, without the
    head when shapes differ.
    """
    import timm

    model = None
    if pretrained and not weights_path:
        try:
            model = timm.create_model(name, pretrained=True, num_classes=num_classes)
        except Exception as exc:  # noqa: BLE001 - offline hub, missing weights: fall back, loudly
            warnings.warn(f"ImageNet weights for {name} could not be loaded ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); training from random init. Pass train.weights_path (or set HF_HUB_OFFLINE=1 to skip the hub retries) "
                          "to use a local weights file.", RuntimeWarning, stacklevel=2)
    if model is None:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    if weights_path:
        state = load_state(weights_path)
        state = state.get("state_dict", state)
        own = model.state_dict()
        compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in compatible]
        model.load_state_dict(compatible, strict=False)
        log.info("loaded %d tensors from %s (%d left at init)", len(compatible), weights_path, len(missing))
    return model


class DetectorNet(nn.Module):
    """Backbone + binary head; forward returns (logits (B,), pooled features (B, D))."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        logits = self.backbone.get_classifier()(feats).squeeze(-1)
        return logits, feats


def save_state(obj: Dict[str, Any], uri: str) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    storage.write_bytes_atomic(uri, buf.getvalue())


def load_state(uri: str, map_location: str = "cpu") -> Dict[str, Any]:
    return torch.load(io.BytesIO(storage.read_bytes(uri)), map_location=map_location, weights_only=True)


def embedding_state(backbone: nn.Module) -> Dict[str, torch.Tensor]:
    """State dict without the classifier: what the embedding network needs."""
    head = backbone.get_classifier()
    head_keys = {f"{n}" for n, _ in backbone.named_modules() if backbone.get_submodule(n) is head} if head is not None else set()
    prefixes = tuple(k + "." for k in head_keys)
    return {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items() if not (prefixes and k.startswith(prefixes))}


def export_embedder(backbone: nn.Module, uri: str, arch: str, image_size: int,
                    extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write the embedding network (classifier dropped) with the config needed to rebuild it."""
    meta = {"arch": arch, "image_size": int(image_size), "mean": list(NORM_MEAN), "std": list(NORM_STD),
            "feature_dim": int(backbone.num_features), "format": "difffake-embedder-v1"}
    meta.update(extra or {})
    save_state({"state_dict": embedding_state(backbone), "meta": meta}, uri)
    return meta


def load_embedder(uri: str, device: str = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """-> (model returning pooled features (B, D), meta)."""
    import timm

    obj = load_state(uri)
    if not isinstance(obj, dict) or obj.get("meta", {}).get("format") != "difffake-embedder-v1":
        raise ValueError(f"{uri} is not an exported difffake embedder (python cli.py train writes best.pt)")
    meta = obj["meta"]
    model = timm.create_model(meta["arch"], pretrained=False, num_classes=0)
    model.load_state_dict(obj["state_dict"], strict=True)
    return model.eval().to(device), meta


def fingerprint(uri: str) -> str:
    import hashlib

    return hashlib.sha256(storage.read_bytes(uri)).hexdigest()[:16]
