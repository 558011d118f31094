"""Training data over the faces Parquet: real crops and their own pseudo-fakes.

Only real faces of the training split are used; validation holds out whole videos (never frames of
a training video) and pairs their real frames with fixed pseudo-fakes: no fake media anywhere.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import schema, storage
from ..config import PseudofakeConfig
from ..faces.codec import decode_image
from ..preprocess import InputSpec
from ..pseudofake.blend import PseudoFakeMaker


class TrainingDataError(ValueError):
    pass


def load_real_faces(faces_uri: str, split: str = "train", frames_per_video: int = 0,
                    with_images: bool = True, videos: Optional[Sequence[str]] = None) -> List[Dict]:
    """Rows (video_id, frame_index, crop, landmarks) of usable real faces of ``split``, of
    ``videos`` only when given (a training worker's shard).

    The label, split, status and video filters go down to the Parquet reader, so fakes, other
    splits and other shards are never read into memory. ``with_images=False`` reads keys only
    (video_id, frame_index): the driver's cheap check.
    """
    import pyarrow.dataset as pads

    images = ["crop", "landmarks"] if with_images else []
    keep = ((pads.field("label") == "real") & (pads.field("split") == split)
            & (pads.field("status") == schema.FRAME_OK))
    if videos is not None:
        keep = keep & pads.field("video_id").isin(list(videos))
    dataset = storage.parquet_dataset(faces_uri, schema=schema.FACES_SCHEMA)
    rows = dataset.to_table(columns=["video_id", "frame_index"] + images, filter=keep).to_pylist()
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


def shard_by_video(rows: Sequence[Dict], world: int, batch_size: int, seed: int) -> Tuple[List[Dict], int]:
    """Training faces dealt to ``world`` workers -> (one shard per worker, the batches per epoch
    every worker runs; DDP needs the same number of steps on every worker: the smallest shard
    sets it). A shard is ``{"videos": [...], "offset": k, "stride": n}``: the worker reads those
    videos and keeps every n-th of their faces from the k-th. Whole videos are dealt, balanced
    by face count, when there are at least as many videos as workers; a corpus of fewer videos
    is dealt by face."""
    frames: Dict[str, int] = {}
    for r in rows:
        frames[r["video_id"]] = frames.get(r["video_id"], 0) + 1
    if not frames:
        raise TrainingDataError("no training faces to shard")
    if len(frames) < world:
        total = sum(frames.values())
        shards = [{"videos": sorted(frames), "offset": k, "stride": world} for k in range(world)]
        sizes = [len(range(k, total, world)) for k in range(world)]
    else:
        videos = np.random.default_rng(seed).permutation(sorted(frames)).tolist()
        dealt: List[List[str]] = [[] for _ in range(world)]
        sizes = [0] * world
        for vid in sorted(videos, key=lambda v: -frames[v]):  # largest first: near-equal shards
            k = int(np.argmin(sizes))
            dealt[k].append(vid)
            sizes[k] += frames[vid]
        shards = [{"videos": sorted(d), "offset": 0, "stride": 1} for d in dealt]
    return shards, max(1, min(sizes) // batch_size)


def take_shard(rows: Sequence[Dict], shard: Dict) -> List[Dict]:
    """A worker's faces of its shard, in a fixed order (video, frame)."""
    mine = set(shard["videos"])
    ordered = sorted((r for r in rows if r["video_id"] in mine), key=lambda r: (r["video_id"], r["frame_index"]))
    return ordered[shard["offset"]::shard["stride"]]


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


def choose_validation(train_split: Sequence[Dict], val_split: Sequence[Dict], val_fraction: float,
                      seed: int) -> Tuple[List[Dict], List[Dict], str]:
    """-> (training faces, validation faces, the split the validation faces come from). The
    manifest's own ``val`` split when it has real faces (FF++ ships one, and its identities are
    apart from the training split's); else ``val_fraction`` of the training videos, held out whole."""
    if val_split:
        if not train_split:
            raise TrainingDataError("training needs real faces of the training split, found none "
                                    "(the manifest's val split has some)")
        return list(train_split), list(val_split), "val"
    train, val = split_by_video(train_split, val_fraction, seed)
    return train, val, "train"


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
