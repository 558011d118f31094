"""Benchmark: detection quality on a fixed synthetic corpus, with the ablations side by side.

The protocol of the paper at CPU scale: the backbone is trained on the real videos of the train
split only (pseudo-fakes made from them; no fake is ever seen), the anomaly model is fitted on the
same real training videos, and every figure is the video AUC on the test split, whose videos (real
and fake, of other identities) neither model saw. One run, one corpus, every row:

- untrained ImageNet features as the paper takes them (last stage pooled, whole 1.3x crop, pair
  vectors L2-normalised, one GMM) against the CPU config's (the centre of the crop, every stage's
  means per cell of a 3x3 grid, no row L2, a GMM per cell for its early (texture) stages and one
  for its late (semantic) stages) and the whole-face statistics of every stage that it replaced;
  with --each-change the crop and the pooled head taken back on their own;
- untrained vs fine-tuned (SAM on pseudo-fakes, the CPU config's early stages frozen) vs fine-tuned
  with NRS;
- the pair combination: SUB2 (the default) / SUB3 / ABS / the single-frame baseline;
- the anomaly model: a GMM per region and level (texture, semantic) / a GMM per region / one GMM
  (with the small-data remedy, and the paper's as is) / one-class SVM.

Target (issue "Scores that detect"): test AUC >= 0.95 overall and >= 0.90 for every manipulation
kind, in under 30 minutes on 2 cores.

    python -m bench.quality                              # CPU: EfficientNet-Lite0 from its wheel
    python -m bench.quality --backbone efficientnet_b4 --num-gpus 1 --epochs 10   # on a GPU
"""

from __future__ import annotations

import argparse
import time

from bench.common import result_stem, write_result
from difffake_ray.figures import pyplot, write_figure


# untrained ImageNet embedders: (name, crop_pct, embedding head). "imagenet" is the CPU config's
# (the centre of the face crop, every stage's means per cell of a 3x3 grid), "imagenet_stages" the
# whole-face statistics it replaced, "imagenet_paper" the paper's
PRETRAINED = [
    ("imagenet", None, None),
    ("imagenet_stages", None, "stages"),
    ("imagenet_paper", 1.0, "pooled"),
]
# with --each-change: the crop and the head each taken back on its own (two more embeds, 5 min)
EACH_CHANGE = [
    ("imagenet_pooled_centre", None, "pooled"),
    ("imagenet_stages_whole", 1.0, "stages"),
]
# the paper's anomaly model, for the rows of a whole-face embedding
WHOLE_FACE_GMM = ["fit.anomaly_model=gmm"]

# (row name, backbone, fit overrides): the first row of each group is the reference of that group
ROWS = [
    # the paper's recipe on untrained features: last stage pooled, whole 1.3x crop, row L2
    ("imagenet as the paper, sub2, gmm", "imagenet_paper", WHOLE_FACE_GMM + ["fit.l2_normalize=true"]),
    ("imagenet as the paper, no row L2", "imagenet_paper", WHOLE_FACE_GMM + ["fit.l2_normalize=false"]),
    ("imagenet, pooled, face centre", "imagenet_pooled_centre", WHOLE_FACE_GMM),
    ("imagenet, stages, whole crop", "imagenet_stages_whole", WHOLE_FACE_GMM),
    # the previous CPU config: whole-face statistics of every stage, one GMM
    ("imagenet, stages, sub2, gmm", "imagenet_stages", WHOLE_FACE_GMM),
    ("imagenet, stages, sub2, gmm paper reg_covar", "imagenet_stages", WHOLE_FACE_GMM + ["fit.small_data_remedy=none"]),
    ("imagenet, regions, sub2, regional gmm", "imagenet", []),  # the CPU config's detector, untrained
    # the same without the texture / semantic split: one GMM per region over all its stages
    ("imagenet, regions, sub2, regional gmm, one level", "imagenet", ["fit.texture_stages=0"]),
    ("imagenet, regions, sub2, regional gmm, row L2", "imagenet", ["fit.l2_normalize=true"]),
    ("imagenet, regions, sub3, regional gmm", "imagenet", ["fit.combination=sub3"]),
    ("imagenet, regions, abs, regional gmm", "imagenet", ["fit.combination=abs"]),
    ("imagenet, regions, single frame, regional gmm", "imagenet", ["fit.combination=single"]),
    ("imagenet, regions, sub2, ocsvm", "imagenet", ["fit.anomaly_model=ocsvm"]),
    ("fine-tuned, regions, sub2, regional gmm", "finetuned", []),
    ("fine-tuned+nrs, regions, sub2, regional gmm", "finetuned_nrs", []),
]
# the CPU config's two detectors: untrained, and fine-tuned as the paper
DETECTORS = ("imagenet, regions, sub2, regional gmm", "fine-tuned, regions, sub2, regional gmm")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="out/bench-quality")
    p.add_argument("--config", default="configs/cpu.yaml")
    p.add_argument("--videos", type=int, default=72, help="drawn-face videos: half real (train/test), half fake")
    p.add_argument("--frames", type=int, default=16, help="frames per video")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--backbone", default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--num-gpus", type=int, default=0)
    p.add_argument("--no-nrs", action="store_true", help="skip the NRS training run")
    p.add_argument("--each-change", action="store_true",
                   help="also the rows that take the CPU config's crop and head back one at a time")
    p.add_argument("--nrs-start-epoch", type=int, default=1, help="NRS from this epoch (paper: 10 of 100)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from difffake_ray import storage
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.backbone import export_pretrained_embedder
    from difffake_ray.config import load_config
    from difffake_ray.datasets.synthetic import make_corpus
    from difffake_ray.pipeline.evaluate import run_evaluate
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray.pipeline.score import run_score
    from difffake_ray.pipeline.train import run_train, training_history
    from difffake_ray.runtime import ray_session

    overrides = [f"corpus.n_videos={args.videos}", f"extract.n_frames={args.frames}", "corpus.include_astronaut=false",
                 "evaluate.split=test", f"train.num_gpus={args.num_gpus}"]
    overrides += [f"train.{k}={v}" for k, v in (("epochs", args.epochs), ("backbone", args.backbone),
                                                  ("image_size", args.image_size)) if v is not None]
    base = load_config(args.config, overrides + args.overrides)
    w = args.workdir
    path = {k: storage.join(w, k) for k in ("corpus", "faces")}
    timings, started = {}, time.time()

    def timed(name, fn, *a, **k):
        t = time.time()
        out = fn(*a, **k)
        timings[name] = round(time.time() - t, 1)
        print(f"bench: {name}: {timings[name]} s", flush=True)
        return out

    if not storage.exists(storage.join(path["corpus"], "manifest.parquet")):
        timed("corpus", make_corpus, path["corpus"], base.corpus)
    results = {}
    with ray_session(base.ray, runs_train=True):
        timed("extract", run_extract, path["corpus"], path["faces"], base)
        backbones = {}
        for name, crop_pct, head in PRETRAINED + (EACH_CHANGE if args.each_change else []):
            backbones[name] = storage.join(w, f"{name}.pt")
            export_pretrained_embedder(base.train.backbone, backbones[name], base.train.image_size,
                                       base.train.pretrained_source, crop_pct=crop_pct or base.train.crop_pct,
                                       embedding=head or base.train.embedding)
        history = {}
        for name, nrs in (("finetuned", False), ("finetuned_nrs", True)):
            if nrs and args.no_nrs:
                continue
            # NRS weights pseudo-fakes from its epoch T_k on (paper: 10); at CPU scale from the second epoch
            nrs_set = ["train.nrs=true", f"train.nrs_start_epoch={args.nrs_start_epoch}"] if nrs else []
            cfg = load_config(args.config, overrides + args.overrides + nrs_set)
            run_dir = storage.join(w, f"run_{name}")
            if not storage.exists(storage.join(run_dir, "best.pt")):
                timed(f"train {name}", run_train, path["faces"], run_dir, cfg)
            history[name] = [{k: h[k] for k in ("epoch", "loss", "val_auc", "val_loss")}
                             for h in training_history(run_dir)]
            backbones[name] = storage.join(run_dir, "best.pt")
        for name, uri in backbones.items():
            emb = storage.join(w, f"emb_{name}")
            timed(f"embed {name}", run_embed, path["faces"], emb, uri, base, progress=False)
        for row, backbone, fit_overrides in ROWS:
            if backbone not in backbones:
                continue
            cfg = load_config(args.config, overrides + args.overrides + fit_overrides)
            slug = row.replace(", ", "_").replace(" ", "-").replace("+", "")
            adm, scores = (storage.join(w, f"{k}_{slug}") for k in ("adm", "scores"))
            emb = storage.join(w, f"emb_{backbone}")  # one embedding per backbone, shared by its rows
            timed(f"fit {row}", run_fit, emb, adm, cfg)
            # score resumes by part: scores of an earlier run's model would be kept as done
            storage.remove(scores, recursive=True)
            run_score(emb, scores, adm, cfg, progress=False)
            m = run_evaluate(scores, storage.join(w, f"report_{slug}"), cfg)
            results[row] = {"auc": m["overall"]["auc"], "auc_ci95": m["overall"]["auc_ci95"],
                            "ap": m["overall"]["ap"], "eer": m["overall"]["eer"],
                            "n_real": m["overall"]["n_real"], "n_fake": m["overall"]["n_fake"],
                            "left_out_seen": {k: m["left_out_seen"][k] for k in ("fitted", "trained")},
                            "per_kind": {k.split("/")[-1]: v["auc"] for k, v in m["per_method"].items()}}
    timings["total"] = round(time.time() - started, 1)
    kinds = sorted({k for r in results.values() for k in r["per_kind"]})
    lines = ["| row | AUC | 95% CI | AP | EER | " + " | ".join(kinds) + " |", "|" + "---|" * (5 + len(kinds))]
    for row, r in results.items():
        lines.append(f"| {row} | {r['auc']:.3f} | {r['auc_ci95'][0]:.2f}-{r['auc_ci95'][1]:.2f} | {r['ap']:.3f} | "
                     f"{r['eer']:.3f} | "
                     + " | ".join(f"{r['per_kind'].get(k, float('nan')):.3f}" for k in kinds) + " |")
    table = "\n".join(lines)
    print(table)
    # the CPU config's two detectors: untrained, and fine-tuned as the paper
    met = {row: bool(r) and r["auc"] >= 0.95 and min(r["per_kind"].values()) >= 0.90
           for row, r in ((row, results.get(row, {})) for row in DETECTORS)}
    summary = {
        "gpus": args.num_gpus,
        "config": {"videos": args.videos, "frames": args.frames, "backbone": base.train.backbone,
                   "image_size": base.train.image_size, "epochs": base.train.epochs, "overrides": args.overrides},
        "target": f"test AUC >= 0.95 overall and >= 0.90 per kind, < 30 min (rows {' and '.join(DETECTORS)})",
        "target_met": {row: ok and timings["total"] < 1800 for row, ok in met.items()}, "training_history": history, "timings_s": timings,
        "results": results, "table_markdown": table,
    }
    stem = result_stem("quality", base.train.backbone)
    write_result(stem, summary)
    _plot(results, kinds, stem + ".png")
    print(f"bench: {timings['total']} s in all; target met: {summary['target_met']}; {stem}.json, {stem}.png")


def _plot(results, kinds, out_png: str) -> None:
    import numpy as np

    plt = pyplot()
    rows = list(results)
    grid = np.array([[results[r]["auc"]] + [results[r]["per_kind"].get(k, np.nan) for k in kinds] for r in rows])
    fig, ax = plt.subplots(figsize=(1.1 * (len(kinds) + 1) + 3, 0.45 * len(rows) + 1.2))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(kinds) + 1), ["overall"] + kinds, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(len(rows)):
        for j in range(len(kinds) + 1):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="test video AUC")
    ax.set_title("DiffFake on held-out synthetic videos: ablations")
    write_figure(out_png, fig)


if __name__ == "__main__":
    main()
