"""Benchmark: detection quality on real face videos (realdev), identities never shared between
what a model is fitted or calibrated on and what it is tested on; the ablations side by side.

Protocol (every figure on videos and identities that neither the anomaly model nor the
calibration saw; the backbones are ImageNet's, untrained for deepfakes, so they saw none):

- Every identity of realdev (``labels.csv``: same-person files share one; a fake's real source is
  kept with it) is dealt to one of ``--folds`` folds, fakes and reals spread evenly.
- For each fold k: the anomaly model is fitted on the real videos of the other folds but one
  (fold k+1), calibrated on the real videos of fold k+1 (its 5% threshold), and scores fold k.
- Folds are split in two halves: **validation** (choose settings there) and **test** (report
  there). A setting is adopted when it helps on validation here *and* holds on the synthetic
  bench (``bench/quality.py``); the test half only reports.
- Per row: video AUC (DeLong 95% CI), AP, EER, AUC per fake kind (face swap, lip-sync, talking
  head, reenactment, generated) and per source, and the false alarms on new real identities at
  the calibration's 5% threshold (and the fakes it flags).

Shortcuts (realdev README): resolution (every 224x224 and 360x288 clip is real, most 512x512 are
fake) and overlays. The AUC within resolution groups is reported beside the overall one.

    python -m bench.realworld                       # ../shared/data/realdev, CPU, ~15 min
    python -m bench.realworld --rows cpu,paper      # some rows only

Results: bench/results/realworld-<backbone>[-<variant>]-<machine>-<accelerator>-<versions>.json and .png. The data are never copied.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import time
from typing import Dict, List

import numpy as np

from bench.common import result_stem, write_result
from difffake_ray.figures import pyplot, write_figure

DEFAULT_REALDEV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                               "realdev")

# The kind of each fake source (the realdev README's groups): a figure per kind
KIND_OF_SOURCE = {
    "DeepFakeLinuxTutorial": "face_swap", "DeepFake-Detect": "face_swap", "faceswap_main": "face_swap",
    "CViT": "face_swap", "roop": "face_swap",
    "DINet": "lip_sync", "TalkingAvatar": "lip_sync", "Wav2Lip-GFPGAN": "lip_sync", "Video-Speech-Translator": "lip_sync",
    "Wav2Lip_training_quick_start": "lip_sync", "MuseTalk": "lip_sync",
    "Journey-to-DeepFake-A-Phenome-and-Viseme-Synchronization": "lip_sync",
    "AniTalker": "talking_head", "EDTalk": "talking_head", "V-Express": "talking_head",
    "deepfaki-api": "reenactment",
    "Text2Video_demo": "generated", "Deepfake-Detection-Project": "generated",
}

# (row, backbone variant, fit overrides). Backbone variants: (timm crop_pct, embedding head)
BACKBONES = {"paper": (1.0, "pooled"), "cpu": (None, None), "stages": (None, "stages")}
ROWS = [
    ("paper recipe: pooled, whole crop, row L2, one GMM", "paper",
     ["fit.anomaly_model=gmm", "fit.l2_normalize=true"]),
    ("stages head, one GMM", "stages", ["fit.anomaly_model=gmm"]),
    ("CPU config: regions, texture + semantic GMM per region", "cpu", []),
    ("CPU config, one GMM per region", "cpu", ["fit.texture_stages=0"]),
    # item 3's few-pairs spread taken back: each video standardised by the training videos' spread
    ("CPU config, training videos' spread", "cpu", ["fit.spread_by_pairs=false"]),
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realdev", default=DEFAULT_REALDEV, help="realdev folder (manifest.csv, labels.csv)")
    p.add_argument("--workdir", default="out/bench-realworld")
    p.add_argument("--config", default="configs/cpu.yaml")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--rows", default=None, help="comma-separated backbone variants to run (default: all)")
    p.add_argument("--detector", default=None, help="face detector (extract.detector; default the config's)")
    p.add_argument("--align", action="store_true", help="landmark-aligned crops (extract.align)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args()


def load_realdev(root: str) -> List[Dict]:
    """Manifest rows with identity, kind, source and resolution from labels.csv."""
    labels = {r["local"]: r for r in csv.DictReader(open(os.path.join(root, "labels.csv"), encoding="utf-8"))}
    rows = []
    for r in csv.DictReader(open(os.path.join(root, "manifest.csv"), encoding="utf-8")):
        lab = labels[r["uri"]]
        rows.append(dict(r, uri=os.path.abspath(os.path.join(root, r["uri"])), identity=lab["identity"],
                         pair_of=lab.get("pair_of") or "", resolution=f"{lab['width']}x{lab['height']}",
                         kind="real" if r["label"] == "real" else KIND_OF_SOURCE.get(r["method"], "other")))
    return rows


def assign_folds(rows: List[Dict], k: int) -> Dict[str, int]:
    """{video_id: fold}: identities dealt to folds, a fake with its real source's identity, fakes
    and reals dealt apart so that every fold holds some of each (stable: a hash orders them)."""
    by_uri = {os.path.basename(r["uri"]): r for r in rows}
    group = {}
    for r in rows:  # a fake made from a listed real video goes with that video's person
        source = by_uri.get(os.path.basename(r["pair_of"])) if r["pair_of"] else None
        group[r["video_id"]] = (source or r)["identity"]
    fold_of_group: Dict[str, int] = {}
    for label in ("fake", "real"):
        groups = sorted({group[r["video_id"]] for r in rows if r["label"] == label} - set(fold_of_group),
                        key=lambda g: hashlib.sha1(g.encode()).hexdigest())
        counts = [0] * k
        for g in groups:
            fold = int(np.argmin(counts))
            fold_of_group[g] = fold
            counts[fold] += sum(1 for r in rows if group[r["video_id"]] == g)
    return {r["video_id"]: fold_of_group[group[r["video_id"]]] for r in rows}


def metrics(rows: List[Dict]) -> Dict:
    """Detection metrics of scored rows ({label, kind, method, resolution, score, threshold})."""
    from difffake_ray.metrics import video_auc

    scored = [r for r in rows if r["score"] is not None]
    out = dict(video_auc([r["label"] for r in scored], np.array([r["score"] for r in scored])))
    reals = [r for r in scored if r["label"] == "real"]
    for group, key in (("per_kind", "kind"), ("per_source", "method")):
        out[group] = {}
        for name in sorted({r[key] for r in scored if r["label"] == "fake"}):
            sub = reals + [r for r in scored if r["label"] == "fake" and r[key] == name]
            out[group][name] = {"auc": video_auc([r["label"] for r in sub], np.array([r["score"] for r in sub]))["auc"],
                                "n_fake": sum(r["label"] == "fake" for r in sub)}
    # within resolution groups that hold both labels: the shortcut taken away
    within = []
    for res in sorted({r["resolution"] for r in scored}):
        sub = [r for r in scored if r["resolution"] == res]
        if len({r["label"] for r in sub}) == 2:
            within.append((res, video_auc([r["label"] for r in sub], np.array([r["score"] for r in sub]))["auc"], len(sub)))
    out["per_resolution"] = {res: {"auc": a, "videos": n} for res, a, n in within}
    flagged = [r["score"] < r["threshold"] for r in scored]
    out["false_alarms_at_5pct"] = float(np.mean([f for f, r in zip(flagged, scored) if r["label"] == "real"])) \
        if reals else float("nan")
    out["flagged_fakes_at_5pct"] = float(np.mean([f for f, r in zip(flagged, scored) if r["label"] == "fake"])) \
        if len(reals) < len(scored) else float("nan")
    out["not_scored"] = {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})
                         if s != "ok"}
    return out


def run_row(emb, videos: List[Dict], fold_of: Dict[str, int], k: int, cfg, backbone_meta: Dict) -> List[Dict]:
    """Every fold scored by a model fitted on other identities, with that fold's calibration ->
    one dict per video: its manifest fields, fold, status, score and the 5% threshold it met."""
    import pyarrow as pa

    from difffake_ray.adm.fit import fit_anomaly_model, training_pairs
    from difffake_ray.calibration import calibrate
    from difffake_ray.adm.scoring import score_videos

    f, s = cfg.fit, cfg.score
    info = {v["video_id"]: v for v in videos}
    fold_col = np.array([fold_of[v] for v in emb["video_id"].to_pylist()])
    usable_real = (np.array(emb["label"].to_pylist()) == "real") & (np.array(emb["status"].to_pylist()) == "ok")
    out = []
    for fold in range(k):
        calib = (fold + 1) % k
        fit_rows = emb.filter(pa.array(usable_real & ~np.isin(fold_col, [fold, calib])))
        X, owners = training_pairs(fit_rows, f.combination, f.pairs_per_video, f.min_frame_gap, f.seed,
                                   f.l2_normalize, f.max_pairs or None, pairing=f.pairing)
        model, _ = fit_anomaly_model(X, owners, f, backbone_meta, log=lambda line: None)
        meta = {"combination": f.combination, "l2_normalize": f.l2_normalize, "embedding_dim": X.shape[1]}

        def scores_of(which):
            table = emb.filter(pa.array(fold_col == which))  # whole videos, failures included
            return score_videos(table, model, meta, s.pairs_per_video, s.min_frame_gap, s.seed, min_faces=s.min_faces,
                                pairing=s.pairing)

        reals = [r["score"] for r in scores_of(calib) if r["status"] == "ok" and r["label"] == "real"]
        threshold = calibrate(reals, targets=(0.05,))["thresholds"]["0.05"]
        for r in scores_of(fold):
            v = info[r["video_id"]]
            out.append(dict(video_id=r["video_id"], label=v["label"], kind=v["kind"], method=v["method"],
                            resolution=v["resolution"], fold=fold, status=r["status"],
                            score=r["score"] if r["status"] == "ok" else None, threshold=threshold,
                            n_calibration_reals=len(reals), n_fit_videos=len(set(owners.tolist()))))
    return out


def main() -> None:
    args = parse_args()
    from difffake_ray import storage
    from difffake_ray.backbone import export_pretrained_embedder
    from difffake_ray.config import load_config
    from difffake_ray.datasets.manifest import manifest_table, write_manifest
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray.runtime import ray_session

    started, timings = time.time(), {}
    videos = load_realdev(args.realdev)
    fold_of = assign_folds(videos, args.folds)
    halves = {"validation": set(range(args.folds // 2)), "test": set(range(args.folds // 2, args.folds))}
    w = args.workdir
    os.makedirs(w, exist_ok=True)
    manifest = os.path.join(w, "manifest.parquet")  # absolute URIs into realdev: nothing is copied
    write_manifest(manifest_table([{k: v[k] for k in ("video_id", "uri", "label", "dataset", "method", "split")}
                                   for v in videos], "realdev"), manifest)
    # a face pipeline other than the config's gets its own faces and embeddings (and result file)
    variant = "-".join(([args.detector] if args.detector else []) + (["aligned"] if args.align else []))
    if args.detector:
        args.overrides = [f"extract.detector={args.detector}"] + args.overrides
    if args.align:
        args.overrides = ["extract.align=true"] + args.overrides
    if variant:
        w = os.path.join(w, variant)
        os.makedirs(w, exist_ok=True)
    base = load_config(args.config, [f"extract.n_frames={args.frames}"] + args.overrides)
    wanted = set(args.rows.split(",")) if args.rows else set(BACKBONES)
    results = {}
    with ray_session(base.ray):
        t = time.time()
        run_extract(manifest, os.path.join(w, "faces"), base, progress=False)
        timings["extract"] = round(time.time() - t, 1)
        embs = {}
        for name, (crop_pct, head) in BACKBONES.items():
            if name not in wanted:
                continue
            uri = os.path.join(w, f"{name}.pt")
            export_pretrained_embedder(base.train.backbone, uri, base.train.image_size, base.train.pretrained_source,
                                       crop_pct=crop_pct or base.train.crop_pct, embedding=head or base.train.embedding)
            t = time.time()
            run_embed(os.path.join(w, "faces"), os.path.join(w, f"emb_{name}"), uri, base, progress=False)
            timings[f"embed {name}"] = round(time.time() - t, 1)
            embs[name] = storage.read_parquet_dir(os.path.join(w, f"emb_{name}"))
            embs[name + "_meta"] = storage.read_json(os.path.join(w, f"emb_{name}", "_run.json"))["backbone_meta"]
    for row, backbone, fit_overrides in ROWS:
        if backbone not in wanted:
            continue
        cfg = load_config(args.config, [f"extract.n_frames={args.frames}"] + args.overrides + fit_overrides)
        t = time.time()
        scored = run_row(embs[backbone], videos, fold_of, args.folds, cfg, embs[backbone + "_meta"])
        timings[f"row {row}"] = round(time.time() - t, 1)
        results[row] = {half: metrics([r for r in scored if r["fold"] in folds]) for half, folds in halves.items()}
        results[row]["videos"] = scored
        te, va = results[row]["test"], results[row]["validation"]
        print(f"realworld: {row}: test AUC {te['auc']:.3f} ({te['auc_ci95'][0]:.2f}-{te['auc_ci95'][1]:.2f}), "
              f"validation {va['auc']:.3f}; false alarms at 5%: test {te['false_alarms_at_5pct']:.0%}", flush=True)
    timings["total"] = round(time.time() - started, 1)
    kinds = ["face_swap", "lip_sync", "talking_head", "reenactment", "generated"]
    lines = ["| row | half | AUC | 95% CI | AP | EER | FPR@5% | TPR@5% | " + " | ".join(kinds) + " |",
             "|" + "---|" * (8 + len(kinds))]
    for row, r in results.items():
        for half in ("validation", "test"):
            m = r[half]
            lines.append(f"| {row} | {half} | {m['auc']:.3f} | {m['auc_ci95'][0]:.2f}-{m['auc_ci95'][1]:.2f} | "
                         f"{m['ap']:.3f} | {m['eer']:.3f} | {m['false_alarms_at_5pct']:.2f} | "
                         f"{m['flagged_fakes_at_5pct']:.2f} | "
                         + " | ".join(f"{m['per_kind'][k]['auc']:.2f} ({m['per_kind'][k]['n_fake']})"
                                      if k in m["per_kind"] else "-" for k in kinds) + " |")
    table = "\n".join(lines)
    print(table)
    counts = {half: {"real": sum(v["label"] == "real" and fold_of[v["video_id"]] in f for v in videos),
                     "fake": sum(v["label"] == "fake" and fold_of[v["video_id"]] in f for v in videos)}
              for half, f in halves.items()}
    summary = {"protocol": {"folds": args.folds, "halves": {h: sorted(f) for h, f in halves.items()},
                            "videos": counts, "frames": args.frames, "backbone": base.train.backbone,
                            "config": args.config, "overrides": args.overrides},
               "targets": "test AUC >= 0.80, every kind >= 0.70, false alarms on new real identities <= 10% at the "
                          "5% threshold, synthetic bench >= 0.95, < 30 min",
               "timings_s": timings, "results": results, "table_markdown": table}
    stem = result_stem("realworld", base.train.backbone, variant)
    write_result(stem, summary)
    _plot(results, kinds, stem + ".png")
    print(f"realworld: {timings['total']} s; {stem}.json, {stem}.png")


def _plot(results: Dict, kinds: List[str], out_png: str) -> None:
    plt = pyplot()
    rows = list(results)
    cols = ["overall"] + kinds + ["FPR@5%"]
    grid = np.array([[results[r]["test"]["auc"]] + [results[r]["test"]["per_kind"].get(k, {}).get("auc", np.nan)
                                                    for k in kinds] + [results[r]["test"]["false_alarms_at_5pct"]]
                     for r in rows])
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 4, 0.5 * len(rows) + 1.4))
    ax.imshow(grid[:, :-1], vmin=0.3, vmax=1.0, cmap="RdYlGn", aspect="auto", extent=(-0.5, len(cols) - 1.5,
                                                                                      len(rows) - 0.5, -0.5))
    ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title("DiffFake on real footage (realdev, test identities): AUC per kind, false alarms at 5%")
    write_figure(out_png, fig)


if __name__ == "__main__":
    main()
