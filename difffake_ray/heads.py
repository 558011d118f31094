"""What an embedder emits for a face: a registry of heads over a timm backbone.

- ``pooled``: the global-average-pooled last feature map (the paper: B4's 1792-d embedding).
- ``stages``: the mean and the standard deviation over space of every channel of every stage's
  feature map. Anomaly detection on untrained ImageNet features (PaDiM, PatchCore) reads the
  intermediate layers for the same reason: early stages keep the colour, sharpness and texture that
  a manipulation changes and that the last, semantic stage pools away; the spread over space sees
  a region that differs from the rest of the face where the mean does not.
- ``regions``: every stage's channel means in each cell of a 3x3 grid over the face (region-major:
  region 0's features, then region 1's...). A lip-sync or an eye edit changes a ninth of the face;
  pooled over the whole face its change drowns in the pose and expression changes of the rest,
  kept in its cell it does not. Read with the ``regional_gmm`` anomaly model (one model per cell
  and level of detail).

Every head says how many regions its vector holds (``regions``; 1 for a whole-face head) and, where
a region's block is stages side by side, each stage's width in it (``region_stages``), and the
exported model records both: fit models each region, and within it the early (texture) and late
(semantic) stages, on their own.

A head is chosen when a backbone is exported (``train.embedding``) and recorded in its file, so
embed, score and detect all read the same features from it (``backbone.EmbeddingNet``). This
module imports no torch: the config checks head names with it.
"""

from __future__ import annotations

from .registry import Registry

EMBEDDING_HEADS = Registry("embedding head")
# cells per side of the regions head's grid: on a face crop, the eyes fall in the top row's
# middle, the nose in the centre and the mouth in the bottom row's middle
REGION_GRID = 3


def _has_intermediates(backbone) -> None:
    if not hasattr(backbone, "forward_intermediates"):
        raise ValueError(f"{type(backbone).__name__} has no forward_intermediates: this head needs it")


@EMBEDDING_HEADS.register("pooled")
class PooledHead:
    regions = 1

    @staticmethod
    def region_stages(backbone):
        return None

    @staticmethod
    def dim(backbone) -> int:
        return int(backbone.num_features)

    @staticmethod
    def features(backbone, x):
        return backbone.forward_head(backbone.forward_features(x), pre_logits=True)


@EMBEDDING_HEADS.register("stages")
class StageStatisticsHead:
    regions = 1

    @staticmethod
    def region_stages(backbone):
        return None  # means and spreads interleaved: not one run of columns per stage

    @staticmethod
    def dim(backbone) -> int:
        _has_intermediates(backbone)
        return 2 * sum(int(info["num_chs"]) for info in backbone.feature_info)

    @staticmethod
    def features(backbone, x):
        import torch

        maps = backbone.forward_intermediates(x, intermediates_only=True)
        return torch.cat([s for m in maps for s in (m.mean(dim=(2, 3)), m.std(dim=(2, 3)))], dim=1)


@EMBEDDING_HEADS.register("regions")
class RegionMeansHead:
    regions = REGION_GRID * REGION_GRID

    @staticmethod
    def dim(backbone) -> int:
        _has_intermediates(backbone)
        return RegionMeansHead.regions * sum(RegionMeansHead.region_stages(backbone))

    @staticmethod
    def region_stages(backbone):
        """Each stage's channel count: a region's block is these runs of columns, in stage order."""
        _has_intermediates(backbone)
        return [int(info["num_chs"]) for info in backbone.feature_info]

    @staticmethod
    def features(backbone, x):
        import torch
        import torch.nn.functional as F

        maps = backbone.forward_intermediates(x, intermediates_only=True)
        cells = torch.cat([F.adaptive_avg_pool2d(m, REGION_GRID).flatten(2) for m in maps], dim=1)  # (B, C, R)
        return cells.transpose(1, 2).flatten(1)  # (B, R * C): region-major
