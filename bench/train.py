"""Benchmark: a SAM training step through Ray Train vs. a plain single-process torch loop.

Same model, same batches (real crops + their pseudo-fakes, built once and shared by both runs),
same number of threads per process, in one run. Both sides call the project's own ``train_step``
(two forward-backward passes per step); only the harness differs: the plain side is a bare loop in
this process, the Ray Train side runs in a TorchTrainer worker after ``prepare_model``. Step time
is measured inside the loop after warm-up, so Ray's start-up is reported apart (it is paid once
per run, not per step).

    python -m bench.train                                  # CPU: efficientnet_b0, 112 px, batch 16
    python -m bench.train --backbone efficientnet_b4 --image-size 224 --batch-size 32   # on a GPU

On a GPU the step runs with bf16 autocast and channels_last, as training does.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from bench.common import result_stem, write_result
from difffake_ray.config import Config, CorpusConfig, TrainConfig


def build_batches(faces_uri: str, n_batches: int, batch_size: int, image_size: int, pcfg, arch: str):
    """``n_batches`` fixed (real, pseudo-fake) batches of real training faces."""
    from difffake_ray.train.data import RealAndPseudoFakeDataset, load_real_faces

    from difffake_ray.preprocess import InputSpec

    rows = load_real_faces(faces_uri, "train")
    ds = RealAndPseudoFakeDataset(rows, pcfg, InputSpec.for_arch(arch, image_size), seed=0)
    half = batch_size // 2
    batches = []
    for b in range(n_batches):
        items = [ds[(b * half + i) % len(ds)] for i in range(half)]
        batches.append((torch.from_numpy(np.stack([it[0] for it in items])),
                        torch.from_numpy(np.stack([it[1] for it in items]))))
    return batches


def timed_steps(model, cfg: TrainConfig, batches, device, warmup: int, steps: int) -> dict:
    """Images/s over ``steps`` SAM steps after ``warmup`` steps."""
    from difffake_ray.train.loop import make_optimizer, train_step

    optimizer = make_optimizer(model, cfg)
    model.train()

    def run(n):
        for s in range(n):
            real, fake = batches[s % len(batches)]
            loss, _, _ = train_step(model, optimizer, real, fake, device, cfg.amp, None, 0, cfg)
        loss.item()  # waits for the device
        if device.type == "cuda":
            torch.cuda.synchronize()

    run(warmup)
    t0 = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - t0
    images = steps * 2 * batches[0][0].shape[0]
    return {"images_per_s": images / seconds, "step_ms": 1000 * seconds / steps, "steps": steps}


def _ray_worker(config):
    import ray.train
    import ray.train.torch as rtt

    from difffake_ray.train.loop import build_model

    cfg = TrainConfig(**config["train"])
    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    model = rtt.prepare_model(build_model(cfg))
    world = ray.train.get_context().get_world_size()
    rank = ray.train.get_context().get_world_rank()
    # each worker takes its share of the global batch, as a distributed sampler would
    batches = [(r[rank::world], f[rank::world]) for r, f in config["batches"]]
    m = timed_steps(model, cfg, batches, rtt.get_device(), config["warmup"], config["steps"])
    m["images_per_s"] *= world
    # Ray Train V2 keeps only metrics that come with a checkpoint
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = None
        if rank == 0:
            with open(os.path.join(tmp, "metrics.json"), "w") as fh:
                json.dump(m, fh)
            ckpt = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(m, checkpoint=ckpt)


def ray_train_run(cfg: TrainConfig, batches, workers: int, threads: int, use_gpu: bool, warmup: int,
                  steps: int) -> dict:
    import dataclasses

    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    t0 = time.perf_counter()
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"train": dataclasses.asdict(cfg), "batches": batches, "threads": threads,
                           "warmup": warmup, "steps": steps},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": threads}),
        run_config=RunConfig(name=f"bench-{workers}w", storage_path=os.path.abspath("bench/out/train/ray")),
    )
    result = trainer.fit()
    metrics = dict(result.metrics)
    metrics["wall_s_incl_startup"] = time.perf_counter() - t0
    return {k: metrics[k] for k in ("images_per_s", "step_ms", "steps", "wall_s_incl_startup")}


def ensure_faces(workdir: str) -> str:
    """A small synthetic corpus and its faces (generated once, reused by later runs)."""
    from difffake_ray.datasets.synthetic import make_corpus
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray import storage

    corpus, faces = os.path.join(workdir, "corpus"), os.path.join(workdir, "faces")
    if not storage.exists(os.path.join(faces, "_run.json")):
        make_corpus(corpus, CorpusConfig(n_videos=8, fake_fraction=0.0, min_seconds=2, max_seconds=2,
                                         sizes=[[640, 360]], include_astronaut=False, seed=7))
        cfg = Config()
        cfg.extract.n_frames = 16
        run_extract(corpus, faces, cfg, progress=False)
    return faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="efficientnet_b0")
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--workdir", default="bench/out/train")
    ap.add_argument("--no-ddp2", action="store_true", help="skip the 2-worker gloo DDP run on CPU")
    ap.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (its state API)")
    args = ap.parse_args()

    import ray

    from difffake_ray.config import PseudofakeConfig
    from difffake_ray.train.loop import build_model

    use_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    cfg = TrainConfig(backbone=args.backbone, pretrained=False, image_size=args.image_size,
                      batch_size=args.batch_size, lr=0.001, amp=True, channels_last=True)
    # faces first (extract runs on Ray), then the plain loop with no Ray process alive
    ray.init(address="local", include_dashboard=False, num_cpus=args.threads, configure_logging=False,
             _node_ip_address="127.0.0.1")
    faces = ensure_faces(args.workdir)
    ray.shutdown()
    batches = build_batches(faces, 4, args.batch_size, args.image_size, PseudofakeConfig(), args.backbone)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plain = timed_steps(build_model(cfg).to(device), cfg, batches, device, args.warmup, args.steps)
    print(f"plain torch loop : {plain['images_per_s']:.1f} images/s ({plain['step_ms']:.0f} ms/step)", flush=True)
    ray.init(address="local", include_dashboard=args.dashboard, num_cpus=args.threads, configure_logging=False,
             _node_ip_address="127.0.0.1")
    ray1 = ray_train_run(cfg, batches, 1, args.threads, use_gpu, args.warmup, args.steps)
    print(f"Ray Train, 1 wkr : {ray1['images_per_s']:.1f} images/s ({ray1['step_ms']:.0f} ms/step), "
          f"{ray1['wall_s_incl_startup']:.1f} s wall with start-up", flush=True)
    overhead = 1 - ray1["images_per_s"] / plain["images_per_s"]
    result = {
        "threads": args.threads,
        "model": {"backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
                  "bf16_autocast": use_gpu, "channels_last": True},
        "ray_dashboard": args.dashboard, "plain_torch": plain, "ray_train_1_worker": ray1,
        "ray_train_overhead": overhead, "target_overhead": 0.10, "target_met": overhead < 0.10,
    }
    if not use_gpu and not args.no_ddp2 and args.threads >= 2:
        ddp = ray_train_run(cfg, batches, 2, args.threads // 2, False, args.warmup, args.steps)
        print(f"Ray Train, 2 wkr gloo DDP ({args.threads // 2} thread each): {ddp['images_per_s']:.1f} images/s",
              flush=True)
        result["ray_train_2_workers_gloo"] = ddp
    ray.shutdown()
    print(f"Ray Train overhead per step: {100 * overhead:.1f}% (target < 10%)", flush=True)
    out = write_result(result_stem("train", args.backbone, f"{args.threads}thread{'s' if args.threads > 1 else ''}",
                                   "dashboard" if args.dashboard else ""), result)
    print(f"written {out}")


if __name__ == "__main__":
    main()
