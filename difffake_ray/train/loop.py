"""The per-worker training loop (runs inside Ray Train; plain torch otherwise).

Each step: 16 real crops + their 16 pseudo-fakes, BCE loss, one SAM update (two passes).
Each epoch: the paper's lr schedule, validation AUC on held-out real videos and their pseudo-fakes,
a checkpoint (model, SAM/SGD state, epoch) reported to Ray Train, which keeps the best by val AUC.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from typing import Any, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .. import storage
from ..backbone import DetectorNet, create_backbone
from ..config import PseudofakeConfig, TrainConfig
from ..preprocess import InputSpec
from .data import RealAndPseudoFakeDataset, load_real_faces, take_shard
from .nrs import centres_due, nrs_weights, shared_centres, weight_epoch
from .sam import SAM, lr_at_epoch, sam_step

MODEL_FILE = "model.pt"
OPTIM_FILE = "optimizer.pt"
CHECKPOINT_META_FILE = "meta.json"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def build_model(cfg: TrainConfig) -> DetectorNet:
    backbone = create_backbone(cfg.backbone, cfg.pretrained, cfg.weights_path, num_classes=1,
                               source=cfg.pretrained_source)
    # A new binary head starts at zero: logits 0, loss log 2, and no gradient reaches the pretrained
    # features until the head has learnt a direction. A random head on ImageNet features gave a
    # first-epoch loss of 1.3-1.9 and steps that wrecked the features they start from.
    head = backbone.get_classifier()
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    net = DetectorNet(backbone, cfg.frozen_stages)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> SAM:
    trainable = [p for p in model.parameters() if p.requires_grad]  # frozen stages take no step
    return SAM(trainable, torch.optim.SGD, rho=cfg.sam_rho, lr=cfg.lr, momentum=cfg.momentum,
               weight_decay=cfg.weight_decay)


def train_step(model, optimizer, real, fake, device, amp: bool, centres: Optional[np.ndarray],
               epoch: int, cfg: TrainConfig):
    """One SAM step on real + pseudo-fake. Returns (loss, logits, features) of the first pass."""
    x = torch.cat([real, fake]).to(device, non_blocking=True)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    n = real.shape[0]
    y = torch.cat([torch.zeros(n), torch.ones(n)]).to(device)

    def loss_fn(m):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits, feats = m(x)
        logits = logits.float()
        w = torch.ones_like(y)
        if centres is not None:
            fw = nrs_weights(feats[n:].detach().float().cpu().numpy(), centres, weight_epoch(epoch), cfg.nrs_lambda,
                             cfg.nrs_beta)
            w[n:] = torch.from_numpy(fw).to(device)
        loss = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).mean()
        return loss, (logits.detach(), feats.detach())

    loss, (logits, feats) = sam_step(model, optimizer, loss_fn)
    return loss, logits, feats


@torch.no_grad()
def evaluate(model, loader, device, amp: bool, channels_last: bool) -> Dict[str, float]:
    from sklearn.metrics import roc_auc_score

    model.eval()
    scores, labels, losses = [], [], []
    for real, fake, _ in loader:
        x = torch.cat([real, fake]).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.cat([torch.zeros(real.shape[0]), torch.ones(fake.shape[0])]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits, _ = model(x)
        losses.append(F.binary_cross_entropy_with_logits(logits.float(), y).item())
        scores.append(logits.float().cpu().numpy())
        labels.append(y.cpu().numpy())
    s, l = np.concatenate(scores), np.concatenate(labels)
    auc = float(roc_auc_score(l, s)) if len(np.unique(l)) == 2 else float("nan")
    return {"val_auc": auc, "val_loss": float(np.mean(losses))}


def save_checkpoint(directory: str, model, optimizer, epoch: int, metrics: Dict[str, Any],
                    cfg: TrainConfig, spec: InputSpec) -> None:
    backbone = unwrap(model).backbone
    torch.save(backbone.state_dict(), os.path.join(directory, MODEL_FILE))
    torch.save(optimizer.state_dict(), os.path.join(directory, OPTIM_FILE))
    with open(os.path.join(directory, CHECKPOINT_META_FILE), "w") as fh:
        json.dump({"epoch": epoch, "metrics": metrics, "arch": cfg.backbone, "input": spec.to_meta(),
                   "weights": (backbone.pretrained_cfg or {}).get("weights", "unknown")}, fh)


def load_checkpoint(directory: str, model, optimizer) -> int:
    """Restore model and optimizer; returns the epoch the checkpoint finished."""
    state = torch.load(os.path.join(directory, MODEL_FILE), map_location="cpu", weights_only=True)
    unwrap(model).backbone.load_state_dict(state)
    opt = torch.load(os.path.join(directory, OPTIM_FILE), map_location="cpu", weights_only=True)
    optimizer.load_state_dict(opt)
    with open(os.path.join(directory, CHECKPOINT_META_FILE)) as fh:
        return int(json.load(fh)["epoch"])


def loader_workers(cfg: TrainConfig, on_gpu: bool) -> int:
    """Loader processes per training worker: as configured, else (None) every CPU but the
    training thread's on a GPU worker, and none on a CPU worker, whose cores run the model."""
    if cfg.num_loader_workers is not None:
        return cfg.num_loader_workers
    return max(1, cfg.cpus_per_worker - 1) if on_gpu else 0


def _gather(world: int, item):
    """``item`` of every DDP worker, by rank (this worker's alone when it is the only one)."""
    if world == 1:
        return [item]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, item)
    return out


def train_worker(config: Dict[str, Any]) -> None:
    """Ray Train entry point. ``config``: {"train": TrainConfig dict, "pseudofake": dict, "faces": uri,
    "shards": [shard_by_video's shard per worker], "val_videos": [...], "shard_steps": n, "resume_from"}."""
    import ray.train
    import ray.train.torch as rtt

    cfg = TrainConfig(**config["train"])
    pcfg = PseudofakeConfig(**config["pseudofake"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(cfg.seed + rank)
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, cfg.cpus_per_worker))

    net = build_model(cfg)
    spec = InputSpec.from_model(net.backbone, cfg.image_size, cfg.crop_pct)  # what the weights were trained with
    # This worker reads its own shard of training videos (and the validation videos) and nothing
    # else: the driver dealt whole videos to workers, balanced, and set the steps per epoch.
    shard, val_videos, shard_steps = config["shards"][rank], config["val_videos"], config["shard_steps"]
    val_split = config.get("val_split", "train")
    if val_split == "train":  # one read: the validation videos are training-split videos held out
        rows = load_real_faces(config["faces"], "train", cfg.frames_per_video, videos=shard["videos"] + val_videos)
    else:
        rows = (load_real_faces(config["faces"], "train", cfg.frames_per_video, videos=shard["videos"])
                + load_real_faces(config["faces"], val_split, cfg.frames_per_video, videos=val_videos))
    train_rows = take_shard(rows, shard)
    val_set = set(val_videos)
    val_rows = [r for r in rows if r["video_id"] in val_set]
    train_ds = RealAndPseudoFakeDataset(train_rows, pcfg, spec, seed=cfg.seed + 1000 * rank)
    val_ds = RealAndPseudoFakeDataset(val_rows, pcfg, spec, seed=cfg.seed + 1, fixed=True)
    half = max(1, cfg.batch_size // 2)
    # pseudo-fakes are made by loader processes, so the accelerator does not wait on the CPU
    loaders = loader_workers(cfg, torch.cuda.is_available())
    loader = torch.utils.data.DataLoader(train_ds, batch_size=half, shuffle=True, drop_last=len(train_ds) > half,
                                         num_workers=loaders, persistent_workers=False,
                                         pin_memory=torch.cuda.is_available())
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=half, num_workers=loaders)
    loader = rtt.prepare_data_loader(loader, add_dist_sampler=False)  # sharded by video already
    val_loader = rtt.prepare_data_loader(val_loader, add_dist_sampler=False)

    model = rtt.prepare_model(net)
    device = rtt.get_device()
    optimizer = make_optimizer(model, cfg)
    start_epoch = 0
    # Ray's own checkpoint (a worker-group restart after a failure) wins over --resume's.
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and config.get("resume_from"):
        fs, path = storage.pyarrow_filesystem(config["resume_from"])
        checkpoint = ray.train.Checkpoint(path=path, filesystem=fs)
    if checkpoint:
        with checkpoint.as_directory() as d:
            start_epoch = load_checkpoint(d, model, optimizer) + 1

    centres = None
    for epoch in range(start_epoch, cfg.epochs):
        for g in optimizer.param_groups:
            g["lr"] = lr_at_epoch(epoch, cfg.lr, cfg.epochs, cfg.lr_decay_start_epoch)
        train_ds.set_epoch(epoch)
        model.train()
        t0, n_images, losses = time.perf_counter(), 0, []
        real_feats, real_probs = [], []
        for step, (real, fake, _) in enumerate(loader):
            if step >= shard_steps:  # every worker runs the same number of DDP steps
                break
            loss, logits, feats = train_step(model, optimizer, real, fake, device, cfg.amp, centres, epoch, cfg)
            losses.append(loss.item())
            n_images += 2 * real.shape[0]
            if cfg.nrs:
                n = real.shape[0]
                real_feats.append(feats[:n].float().cpu().numpy())
                real_probs.append(torch.sigmoid(-logits[:n]).cpu().numpy())
            if cfg.steps_per_epoch and step + 1 >= cfg.steps_per_epoch:
                break
        seconds = time.perf_counter() - t0
        if cfg.nrs and centres_due(epoch, cfg.nrs_start_epoch):
            # every worker's most confident reals pooled: one set of centres for all replicas
            centres = shared_centres(np.concatenate(real_feats) if real_feats else np.zeros((0, 1), np.float32),
                                     np.concatenate(real_probs) if real_probs else np.zeros(0, np.float32),
                                     cfg.nrs_top_k, cfg.nrs_clusters, cfg.seed, functools.partial(_gather, world))
        metrics = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                   "images_per_s": n_images * world / max(seconds, 1e-9),
                   "lr": optimizer.param_groups[0]["lr"], "world_size": world}
        metrics.update(evaluate(model, val_loader, device, cfg.amp, cfg.channels_last))
        if rank == 0:  # one line per epoch reaches the driver's console (Ray forwards worker output);
            # to the process's own stdout: Ray Train's patched print would log it and echo it, twice
            print(f"train: epoch {epoch + 1}/{cfg.epochs}: loss {metrics['loss']:.4f}, val AUC {metrics['val_auc']:.4f}, "
                  f"val loss {metrics['val_loss']:.4f}, {metrics['images_per_s']:.1f} images/s", file=sys.__stdout__,
                  flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if rank == 0:
                save_checkpoint(tmp, model, optimizer, epoch, metrics, cfg, spec)
                ckpt = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=ckpt)
