"""Shared fixtures: one local Ray per test session, and small generated corpora."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from difffake_ray import schema  # noqa: E402
from difffake_ray.config import Config, CorpusConfig, load_config  # noqa: E402


def small_corpus_config(n_videos: int = 8, seed: int = 0) -> CorpusConfig:
    return CorpusConfig(n_videos=n_videos, min_seconds=1.6, max_seconds=2.4, sizes=[[640, 360]],
                        include_astronaut=False, seed=seed)


def fast_config(**sections) -> Config:
    """The paper defaults, shrunk where only test speed is at stake."""
    cfg = load_config(None, ["extract.n_frames=8", "extract.videos_per_file=2", "ray.num_cpus=2"])
    for key, value in sections.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (ray.init costs ~5 s and ~2 GB here)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """8 synthetic videos (4 real: 2 train, 2 test; 4 fake), 640x360, ~2 s, with manifest.parquet."""
    from difffake_ray.datasets.synthetic import make_corpus

    root = str(tmp_path_factory.mktemp("corpus"))
    make_corpus(root, small_corpus_config(), progress=False)
    return root


@pytest.fixture(scope="session")
def astronaut_rgb():
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def faces(ray_local, corpus, tmp_path_factory):
    """The corpus through the extract stage (8 frames per video)."""
    from difffake_ray.pipeline.extract import run_extract

    out = str(tmp_path_factory.mktemp("faces"))
    run_extract(corpus, out, fast_config(), progress=False)
    return out


def tiny_train_overrides(run_epochs: int = 2):
    return ["train.backbone=test_efficientnet", "train.pretrained=false", "train.image_size=64",
            "train.batch_size=8", "train.steps_per_epoch=2", f"train.epochs={run_epochs}",
            "train.lr_decay_start_epoch=1", "train.num_workers=2", "train.val_fraction=0.5"]


def toy_embeddings_table(n_videos=12, n_frames=8, dim=8, seed=0) -> pa.Table:
    """Reals jitter evenly between frames, fakes along two dimensions: a separable toy corpus (pair
    features are L2-normalised, so the difference must be in direction, not size)."""
    rng = np.random.default_rng(seed)
    fake_scale = np.full(dim, 0.1)
    fake_scale[:2] = 2.0
    rows = []
    for v in range(n_videos):
        fake = v % 3 == 2
        split = "train" if v < n_videos // 2 and not fake else "test"
        base = rng.normal(size=dim)
        for f in range(n_frames):
            drift = rng.normal(size=dim) * (fake_scale if fake else 0.1)
            rows.append(dict(video_id=f"v{v:02d}", uri=f"v{v:02d}.mp4", label="fake" if fake else "real",
                             dataset="toy", method="swap" if fake else "original", split=split,
                             video_status="ok", status="ok", error=None, frame_index=2 * f,
                             embedding=(base + drift).astype(np.float32).tolist()))
    return pa.Table.from_pylist(rows, schema=schema.embeddings_schema(dim))
