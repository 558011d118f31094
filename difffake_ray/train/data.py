"""Training data over the faces Parquet: real crops and their own pseudo-fakes.

Only real faces of the training split are used; validation holds out whole videos (never frames of
a training video) and pairs their real frames with fixed pseudo-fakes: no fake media anywhere.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import pyarrow.compute as pc

from .. import schema, storage
from ..config import PseudofakeConfig
from ..faces.codec import decode_image
from ..preprocess import InputSpec
from ..pseudofake.blend import PseudoFakeMaker


class TrainingDataError(ValueError):
    pass


def load_real_faces(faces_uri: str, split: str = "train", frames_per_video: int = 0,
                    with_images: bool = True) -> List[Dict]:
    """Rows (video_id, frame_index, crop, landmarks) of usable real faces of ``split``.

    ``with_images=False`` reads keys only (video_id, frame_index): the driver's cheap check.
    """
    images = ["crop", "landmarks"] if with_images else []
    cols = ["video_id", "frame_index", "label", "split", "status"] + images
    table = storage.read_parquet_dir(faces_uri, columns=cols, schema=schema.FACES_SCHEMA)
    keep = pc.and_(pc.and_(pc.equal(table["label"], "real"), pc.equal(table["split"], split)),
                   pc.equal(table["status"], schema.FRAME_OK))
    rows = table.filter(keep).select(["video_id", "frame_index"] + images).to_pylist()
    if frames_per_video:
        by_video: Dict[str, List[Dict]] = {}
        for r in rows:
            by_video.setdefault(r["video_id"], []).append(r)
        rows = []
        for vid in sorted(by_video):
            frames = sorted(by_video[vid], key=lambda r: r["frame_index"])
            idx = np.unique(np.round(np.linspace(0, len(frames) - 1, min(frames_per_video, len(frames)))).astype(int))
            rows.extend(frames[i] for i in idx)
    return rows


def split_by_video(rows: Sequence[Dict], val_fraction: float, seed: int) -> Tuple[List[Dict], List[Dict]]:
    """Hold out whole videos for validation (at least one when there are two or more videos)."""
    videos = sorted({r["video_id"] for r in rows})
    if len(videos) < 2:
        raise TrainingDataError(
            f"training needs real faces from at least 2 videos of the training split, found {len(videos)}")
    rng = np.random.default_rng(seed)
    n_val = min(len(videos) - 1, max(1, int(round(val_fraction * len(videos)))))
    val = set(rng.permutation(videos)[:n_val].tolist())
    return [r for r in rows if r["video_id"] not in val], [r for r in rows if r["video_id"] in val]


class RealAndPseudoFakeDataset:
    """Item i -> (real image, its pseudo-fake, i) as CHW float32 arrays normalised by ``spec``.

    The pseudo-fake of item i is drawn from ``rng(seed, epoch, i)``: reproducible, and new each
    epoch unless ``fixed`` (validation).
    """

    def __init__(self, rows: Sequence[Dict], cfg: PseudofakeConfig, spec: InputSpec, seed: int = 0,
                 fixed: bool = False):
        self.rows = list(rows)
        self.maker = PseudoFakeMaker.from_config(cfg)
        self.seed, self.fixed, self.epoch, self.spec = seed, fixed, 0, spec

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows[i]
        # resized as embed resizes (the model's size and interpolation), then blended at that size
        image, landmarks = self.spec.resize(decode_image(row["crop"]),
                                            np.asarray(row["landmarks"], np.float32).reshape(68, 2))
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, i])
        fake = self.maker.make(image, landmarks, rng).image
        return self.spec.normalise(image), self.spec.normalise(fake), i
