"""train: faces Parquet -> run folder with Ray Train checkpoints and the exported backbone.

TorchTrainer over ``num_workers`` workers (GPUs when asked for), checkpoints kept by validation AUC,
FailureConfig so that a dead worker restarts the group from the last checkpoint, and ``resume`` to
continue a stopped run from its latest checkpoint. ``best.pt`` / ``last.pt`` in the run folder are
the embedding networks (classifier dropped) that ``embed`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import time
from typing import Any, Dict, Optional

from .. import storage
from ..config import Config, ConfigError
from ..runtime import TRAINED_VIDEOS, cluster_gpus, is_verbose, ray_session, write_run_record, write_seen_videos
from ..preprocess import InputSpec
from ..train.data import TrainingDataError, choose_validation, load_real_faces, shard_by_video
from ..train.loop import CHECKPOINT_META_FILE, MODEL_FILE, OPTIM_FILE

RAY_RUN_NAME = "ray_train"
BEST_FILE = "best.pt"
LAST_FILE = "last.pt"


def _checkpoint_dirs(run_dir: str):
    """(epoch, val AUC, checkpoint URI) of every kept checkpoint, oldest first; any fsspec URI."""
    fs, path = storage.url_to_fs(run_dir)
    found = []
    for folder in fs.glob(posixpath.join(path, RAY_RUN_NAME, "checkpoint_*")):
        if not fs.isdir(folder):  # checkpoint_manager_snapshot.json
            continue
        uri = fs.unstrip_protocol(folder) if "://" in run_dir else folder
        try:
            with fs.open(posixpath.join(folder, CHECKPOINT_META_FILE), "rb") as fh:
                info = json.load(fh)
            complete = all(fs.size(posixpath.join(folder, f)) > 0 for f in (MODEL_FILE, OPTIM_FILE))
            epoch, auc = int(info["epoch"]), info["metrics"].get("val_auc", float("nan"))
        except (OSError, ValueError, KeyError, TypeError):
            complete = False
        if not complete:
            # a worker killed while Ray persisted this checkpoint: Ray never registered it
            print(f"train: skipping incomplete checkpoint {uri}", flush=True)
            continue
        found.append((epoch, auc, uri))
    return sorted(found)


def training_history(run_dir: str):
    """The per-epoch metrics (loss, val AUC, val loss, images/s) of the kept checkpoints, by epoch."""
    return [storage.read_json(storage.join(p, CHECKPOINT_META_FILE))["metrics"] for _, _, p in _checkpoint_dirs(run_dir)]


def latest_checkpoint(run_dir: str) -> Optional[str]:
    found = _checkpoint_dirs(run_dir)
    return found[-1][2] if found else None


def check_gpus(asked: int, present: float) -> None:
    """Refuse, before any worker starts, a GPU count the cluster does not have (Ray would otherwise
    wait for it forever)."""
    if asked > present:
        raise ConfigError(f"train.num_gpus (--num-gpus) = {asked}, but Ray finds {present:g} GPU(s) in its cluster "
                          f"(a local Ray: this machine's): ask for at most {int(present)}"
                          + ("" if present else ", i.e. 0 to train on the CPUs"))


def run_train(faces_uri: str, run_dir: str, cfg: Config, resume: bool = False) -> Dict[str, Any]:
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ..backbone import create_backbone, export_embedder, leading_stage_modules, load_state

    started = time.time()
    faces_uri = storage.absolute(faces_uri)
    tcfg = cfg.train
    if not tcfg.epochs:
        raise ConfigError("train.epochs = 0 trains nothing: `cli.py pretrained ARCH OUT.pt` exports the untrained "
                          "ImageNet backbone (run-all does so itself)")
    run_dir = storage.absolute(run_dir)
    # Ray Train writes checkpoints through a pyarrow filesystem: any fsspec URI (s3://, gs://,
    # file://) or a local/shared path
    run_fs, run_path = storage.pyarrow_filesystem(run_dir)
    # Fail fast on data that cannot train, before any worker starts (keys only: workers read crops).
    rows = load_real_faces(faces_uri, "train", tcfg.frames_per_video, with_images=False)
    train_rows, val_rows, val_split = choose_validation(
        rows, load_real_faces(faces_uri, "val", tcfg.frames_per_video, with_images=False), tcfg.val_fraction, tcfg.seed)
    print(f"train: validation on {len({r['video_id'] for r in val_rows})} real videos of "
          + ("the manifest's val split" if val_split == "val" else
             f"the training split ({tcfg.val_fraction:.0%} held out; the manifest has no val split)"), flush=True)
    if not train_rows or not val_rows:
        raise TrainingDataError("train: no usable real faces for training or validation")
    try:  # a frozen_stages the backbone does not have fails here, not in every worker
        leading_stage_modules(create_backbone(tcfg.backbone, pretrained=False, num_classes=1), tcfg.frozen_stages)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    use_gpu = tcfg.num_gpus > 0
    num_workers = tcfg.num_gpus if use_gpu else max(1, tcfg.num_workers)
    shards, shard_steps = shard_by_video(train_rows, num_workers, max(1, tcfg.batch_size // 2), tcfg.seed)
    resume_from = None
    if resume:
        latest = latest_checkpoint(run_dir)
        if latest is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {run_dir}/{RAY_RUN_NAME}")
        resume_from = latest
        print(f"train: resuming from {latest}", flush=True)
    storage.makedirs(run_dir)
    with ray_session(cfg.ray, runs_train=True):
        if use_gpu:
            check_gpus(tcfg.num_gpus, cluster_gpus())
        trainer = TorchTrainer(
            _train_worker_entry,
            train_loop_config={"train": dataclasses.asdict(tcfg), "pseudofake": dataclasses.asdict(cfg.pseudofake),
                               "faces": faces_uri, "resume_from": resume_from, "shards": shards,
                               "val_videos": sorted({r["video_id"] for r in val_rows}), "val_split": val_split,
                               "shard_steps": shard_steps},
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": tcfg.cpus_per_worker}),
            run_config=RunConfig(
                name=RAY_RUN_NAME, storage_path=run_path, storage_filesystem=run_fs,
                checkpoint_config=CheckpointConfig(num_to_keep=tcfg.keep_checkpoints,
                                                   checkpoint_score_attribute="val_auc",
                                                   checkpoint_score_order="max"),
                failure_config=FailureConfig(max_failures=tcfg.max_failures),
                # Ray Train's own INFO lines (worker group start, each checkpoint) only with -v;
                # the per-epoch line comes from the loop
                logging_config=LoggingConfig(log_level="INFO" if is_verbose() else "WARNING"),
            ),
        )
        result = trainer.fit()
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")

    found = _checkpoint_dirs(run_dir)
    if not found:
        raise RuntimeError(f"training finished without a checkpoint under {run_dir}")
    best = max(found, key=lambda f: (f[1] if f[1] == f[1] else -1.0, f[0]))
    last = found[-1]
    meta_out = {}
    for name, (epoch, auc, path) in ((BEST_FILE, best), (LAST_FILE, last)):
        info = storage.read_json(storage.join(path, CHECKPOINT_META_FILE))
        backbone = create_backbone(tcfg.backbone, pretrained=False, num_classes=1)
        backbone.load_state_dict(load_state(storage.join(path, MODEL_FILE)))
        backbone.pretrained_cfg = dict(backbone.pretrained_cfg, weights=f"fine-tuned from {info.get('weights')}")
        meta_out[name] = export_embedder(backbone, storage.join(run_dir, name), tcfg.backbone,
                                         InputSpec.from_meta(info),
                                         extra={"epoch": epoch, "val_auc": auc, "checkpoint": path},
                                         embedding=tcfg.embedding)
    history = training_history(run_dir)
    write_seen_videos(run_dir, TRAINED_VIDEOS, [r["video_id"] for r in train_rows + val_rows])  # train and validation
    record = write_run_record(
        run_dir, "train", cfg, inputs={"faces": faces_uri, "resume": resume},
        counts={"train_faces": len(train_rows), "val_faces": len(val_rows),
                "train_videos": len({r['video_id'] for r in train_rows}),
                "val_videos": len({r['video_id'] for r in val_rows})},
        started=started,
        extra={"best": {"epoch": best[0], "val_auc": best[1]}, "last_epoch": last[0], "validation_split": val_split,
               "kept_checkpoints": [p for _, _, p in found], "exported": meta_out, "history": history},
    )
    print(f"train: {last[0] + 1} epochs, best val AUC {best[1]:.4f} at epoch {best[0]}; "
          f"backbone: {storage.join(run_dir, BEST_FILE)} ({time.time() - started:.0f} s)", flush=True)
    return record


def _train_worker_entry(config):
    from ..train.loop import train_worker

    train_worker(config)
