"""A picture of what the model learns from: for a few real faces, the image with its landmarks,
then mask and pseudo-fake for each mask generator."""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..faces.codec import decode_image
from ..figures import pyplot, write_figure
from ..preprocess import InputSpec
from ..pseudofake.blend import PseudoFakeMaker
from ..pseudofake.masks import MASK_GENERATORS
from .data import load_real_faces


def preview_grid(faces_uri: str, out_png: str, cfg: Config, n: int = 8, split: str = "train") -> None:
    plt = pyplot()
    rows = load_real_faces(faces_uri, split) or load_real_faces(faces_uri, "test")
    if not rows:
        raise ValueError(f"{faces_uri}: no real faces to preview")
    pick = np.random.default_rng(cfg.seed).permutation(len(rows))[:n]
    names = MASK_GENERATORS.names()
    maker = PseudoFakeMaker.from_config(cfg.pseudofake, generators=names)
    # the faces as training sees them: the model's input size and interpolation
    spec = InputSpec.for_arch(cfg.train.backbone, cfg.train.image_size, cfg.train.crop_pct)
    cols = 1 + 2 * len(names)
    fig, axes = plt.subplots(len(pick), cols, figsize=(1.6 * cols, 1.7 * len(pick)), squeeze=False)
    for r, i in enumerate(pick):
        img, lm = spec.resize(decode_image(rows[i]["crop"]), np.asarray(rows[i]["landmarks"], np.float32).reshape(68, 2))
        axes[r, 0].imshow(img)
        axes[r, 0].scatter(lm[:, 0], lm[:, 1], s=2, c="lime")
        axes[r, 0].set_title(rows[i]["video_id"].split("/")[-1], fontsize=6)
        for k, name in enumerate(names):
            fake = maker.make(img, lm, np.random.default_rng([cfg.seed, int(i), k]), generator=name)
            axes[r, 1 + 2 * k].imshow(fake.mask, cmap="gray", vmin=0, vmax=1)
            axes[r, 2 + 2 * k].imshow(fake.image)
            if r == 0:
                axes[r, 1 + 2 * k].set_title(f"{name} mask", fontsize=7)
                axes[r, 2 + 2 * k].set_title(f"{name} fake", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    write_figure(out_png, fig, tight=False)
