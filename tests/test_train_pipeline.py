"""Ray Train end to end: 2 CPU (gloo) workers, a tiny timm backbone, checkpoint, export, resume."""

import os

import pytest
import torch

from difffake_ray.backbone import load_embedder
from difffake_ray.config import load_config
from difffake_ray.pipeline.train import latest_checkpoint, run_train

from .conftest import tiny_train_overrides

pytestmark = pytest.mark.ray


def test_two_worker_training_checkpoints_exports_and_resumes(ray_local, faces, tmp_path):
    # a URI, not a path: checkpoints go through the pyarrow/fsspec filesystem as on s3:// or gs://
    run = f"file://{tmp_path}/run"
    cfg = load_config(None, tiny_train_overrides(2) + ["extract.n_frames=8"])
    rec = run_train(faces, run, cfg)
    assert rec["last_epoch"] == 1 and len(rec["history"]) == 2
    assert all(h["world_size"] == 2 for h in rec["history"])
    assert latest_checkpoint(run) is not None
    for name in ("best.pt", "last.pt"):
        # loads with weights_only=True, rebuilds the embedding network from its own config
        model, meta = load_embedder(os.path.join(run, name))
        assert meta["arch"] == "test_efficientnet" and meta["feature_dim"] == model.dim
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, meta["feature_dim"])
        assert model.backbone.get_classifier() is None or isinstance(model.backbone.get_classifier(), torch.nn.Identity)

    cfg3 = load_config(None, tiny_train_overrides(3))
    rec2 = run_train(faces, run, cfg3, resume=True)
    epochs = [h["epoch"] for h in rec2["history"]]
    assert rec2["last_epoch"] == 2 and epochs.count(2) == 1 and 0 in epochs  # continued, not restarted


def test_resume_without_checkpoint_is_a_clear_error(ray_local, faces, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_train(faces, str(tmp_path / "empty"), load_config(None, tiny_train_overrides(1)), resume=True)


def test_more_gpus_than_the_cluster_has_fail_before_training(ray_local, faces, tmp_path):
    from difffake_ray.config import ConfigError

    with pytest.raises(ConfigError, match=r"num_gpus \(--num-gpus\) = 4, but Ray finds 0 GPU\(s\)"):
        run_train(faces, str(tmp_path / "run"), load_config(None, tiny_train_overrides(1) + ["train.num_gpus=4"]))
    assert not (tmp_path / "run" / "ray_train").exists()  # no worker started, no checkpoint folder


def test_checkpoints_cut_short_by_a_killed_worker_are_skipped(tmp_path):
    """A worker killed while Ray persists a checkpoint leaves a folder Ray never registered."""
    import json

    from difffake_ray.pipeline.train import RAY_RUN_NAME, _checkpoint_dirs

    root = tmp_path / RAY_RUN_NAME
    for i, (meta, files) in enumerate([
            ({"epoch": 0, "metrics": {"val_auc": 0.6}}, ("model.pt", "optimizer.pt")),  # complete
            (None, ("model.pt", "optimizer.pt")),  # meta.json empty
            ({"epoch": 2, "metrics": {"val_auc": 0.9}}, ("model.pt",))]):  # optimizer never arrived
        d = root / f"checkpoint_2026-01-01_00-00-0{i}"
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps(meta) if meta else "")
        for f in files:
            (d / f).write_bytes(b"weights")
    (root / "checkpoint_manager_snapshot.json").write_text("{}")
    assert [(e, a) for e, a, _ in _checkpoint_dirs(str(tmp_path))] == [(0, 0.6)]
    assert latest_checkpoint(str(tmp_path)).endswith("checkpoint_2026-01-01_00-00-00")
