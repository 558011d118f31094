"""What an embedder emits for a face: a registry of heads over a timm backbone.

- ``pooled``: the global-average-pooled last feature map (the paper: B4's 1792-d embedding).
- ``stages``: the mean and the standard deviation over space of every channel of every stage's
  feature map. Anomaly detection on untrained ImageNet features (PaDiM, PatchCore) reads the
  intermediate layers for the same reason: early stages keep the colour, sharpness and texture that
  a manipulation changes and that the last, semantic stage pools away; the spread over space sees
  a region that differs from the rest of the face where the mean does not.

A head is chosen when a backbone is exported (``train.embedding``) and recorded in its file, so
embed, score and detect all read the same features from it (``backbone.EmbeddingNet``). This
module imports no torch: the config checks head names with it.
"""

from __future__ import annotations

from .registry import Registry

EMBEDDING_HEADS = Registry("embedding head")


@EMBEDDING_HEADS.register("pooled")
class PooledHead:
    @staticmethod
    def dim(backbone) -> int:
        return int(backbone.num_features)

    @staticmethod
    def features(backbone, x):
        return backbone.forward_head(backbone.forward_features(x), pre_logits=True)


@EMBEDDING_HEADS.register("stages")
class StageStatisticsHead:
    @staticmethod
    def dim(backbone) -> int:
        if not hasattr(backbone, "forward_intermediates"):
            raise ValueError(f"{type(backbone).__name__} has no forward_intermediates: the stages head needs it")
        return 2 * sum(int(info["num_chs"]) for info in backbone.feature_info)

    @staticmethod
    def features(backbone, x):
        import torch

        maps = backbone.forward_intermediates(x, intermediates_only=True)
        return torch.cat([s for m in maps for s in (m.mean(dim=(2, 3)), m.std(dim=(2, 3)))], dim=1)
