"""Benchmark: does the cost per video stay flat from 10k to 1M videos, and the driver's memory bounded?

A simulated corpus of N videos is generated straight into the stage formats (no video decoding):
a faces table of tiny crops (what extract would write, with its manifest record) and an
embeddings table of a small dimension (what embed would write, for the driver-side stages). Each
stage after extract then runs in its own process, through the project's own drivers, timed with
its bookkeeping included, and reports that process's peak RSS (the driver's, not Ray's workers'):

- embed: the faces table through the streamed Ray Data stages with a trivial model (timm's
  ``test_efficientnet`` at 16 px): the pipeline's cost per video, not a backbone's;
- fit (GMM on the real training pairs), score (Ray Data), evaluate, verify of embed and score
  outputs, on the small-dimension embeddings.

Target (issue "A million videos"): driver peak RSS under 2 GB at 1M videos, and time per video
flat from 10k to 1M (within 1.5x).

    python -m bench.scale                          # N = 10k, 100k, 1M (about an hour on 2 cores)
    python -m bench.scale --sizes 10000 100000     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

from bench.common import result_stem, write_result
from difffake_ray.figures import pyplot, write_figure

STAGES = ["embed", "fit", "score", "evaluate", "verify-embed", "verify-score"]
TARGET_RSS_GB, TARGET_FLATNESS = 2.0, 1.5


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="out/bench-scale")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--frames", type=int, default=4, help="faces per video")
    p.add_argument("--dim", type=int, default=16, help="embedding dimension of the driver-side stages")
    # a part is a task of each stage: 256 videos keeps 1M videos at 3,906 parts, so that a 2-core
    # machine measures the per-video costs rather than Ray's per-task overhead
    p.add_argument("--videos-per-part", type=int, default=256)
    p.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    p.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    return p.parse_args()


def corpus_dir(workdir: str, n: int) -> str:
    return os.path.join(os.path.abspath(workdir), f"n{n}")


def _config(args):
    from difffake_ray.config import load_config

    return load_config(None, ["fit.min_frame_gap=1", "score.min_frame_gap=1", "fit.small_data_remedy=none",
                              "fit.reg_covar=1.0e-4", "fit.max_iter=50", "evaluate.split=test",
                              "embed.batch_size=256"])


def generate(args, n: int) -> None:
    """The faces table (tiny crops; its manifest record), the small embeddings table with the
    run record of an embed, and the trivial backbone."""
    from difffake_ray import schema, storage
    from difffake_ray.backbone import create_backbone, export_embedder
    from difffake_ray.faces.codec import encode_image
    from difffake_ray.pipeline.common import MANIFEST_RECORD, part_name
    from difffake_ray.preprocess import InputSpec
    from difffake_ray.runtime import write_run_record

    base = corpus_dir(args.workdir, n)
    if os.path.exists(os.path.join(base, "ready")):
        return
    shutil.rmtree(base, ignore_errors=True)
    faces, emb = os.path.join(base, "faces"), os.path.join(base, "emb")
    rng = np.random.default_rng(n)
    model = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(model, os.path.join(base, "trivial.pt"), "test_efficientnet", InputSpec.from_model(model, 16))
    crop = encode_image(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    f = args.frames
    manifests = []
    for start in range(0, n, args.videos_per_part):
        ids = [f"sim/{'fake' if v % 2 else 'real'}/{v:08d}" for v in range(start, min(n, start + args.videos_per_part))]
        fake = np.array([v % 2 == 1 for v in range(start, start + len(ids))])
        # reals: one in five in the training split; fakes all test
        split = np.where(~fake & (np.arange(start, start + len(ids)) % 10 < 2), "train", "test")
        manifest = pa.table({"video_id": ids, "uri": [f"s3://sim/{i}.mp4" for i in ids],
                             "label": np.where(fake, "fake", "real"), "dataset": ["sim"] * len(ids),
                             "method": np.where(fake, "swap", "original"), "split": split}, schema=schema.MANIFEST_SCHEMA)
        manifests.append(manifest)
        rows = manifest.take(np.repeat(np.arange(len(ids)), f))
        m = rows.num_rows
        common = {c: rows[c] for c in schema.MANIFEST_COLUMNS}
        common.update(video_status=pa.array(["ok"] * m), status=pa.array(["ok"] * m), error=pa.nulls(m, pa.string()),
                      frame_index=pa.array(np.tile(np.arange(f, dtype=np.int32) * 5, len(ids))),
                      track=pa.array(np.zeros(m, np.int16)), motion=pa.array(np.full(m, 8.0, np.float32)))
        face_cols = dict(common, crop=pa.array([crop] * m, pa.binary()), crop_format=pa.array(["png"] * m))
        face_table = pa.table({c: face_cols.get(c, pa.nulls(m, schema.FACES_SCHEMA.field(c).type))
                               for c in schema.FACES_SCHEMA.names}).cast(schema.FACES_SCHEMA)
        name = part_name(ids)
        storage.write_parquet_atomic(face_table, os.path.join(faces, name))
        base_emb = np.repeat(rng.normal(size=(len(ids), args.dim)), f, axis=0)
        scale = np.where(np.repeat(fake, f)[:, None], 0.5, 0.1)
        values = (base_emb + rng.normal(size=(m, args.dim)) * scale).astype(np.float32)
        emb_table = pa.table(dict(common, embedding=schema.embeddings_from_numpy(values)
                                  .cast(schema.embeddings_schema(args.dim).field("embedding").type)))
        storage.write_parquet_atomic(emb_table.cast(schema.embeddings_schema(args.dim)), os.path.join(emb, name))
    manifest = pa.concat_tables(manifests)
    storage.write_parquet_atomic(manifest, os.path.join(faces, MANIFEST_RECORD))
    cfg = _config(args)
    counts = {"videos": {"ok": n}, "rows": n * f}
    write_run_record(faces, "extract", cfg, inputs={"manifest": "simulated"}, counts=counts, started=time.time())
    write_run_record(emb, "embed", cfg, inputs={"faces": faces, "backbone": "simulated"}, counts=counts,
                     started=time.time(), extra={"embedding_dim": args.dim})
    open(os.path.join(base, "ready"), "w").close()


def run_stage(args) -> None:
    """One stage in this process; prints {"seconds", "peak_rss_gb", ...} as the last line."""
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.pipeline.evaluate import run_evaluate
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.score import run_score
    from difffake_ray.verify import verify_output

    base = corpus_dir(args.workdir, args.n)
    p = {k: os.path.join(base, k) for k in ("faces", "emb", "emb_trivial", "adm", "scores", "report")}
    cfg = _config(args)
    extra = {}
    t0 = time.perf_counter()
    if args.stage == "embed":
        shutil.rmtree(p["emb_trivial"], ignore_errors=True)
        run_embed(p["faces"], p["emb_trivial"], os.path.join(base, "trivial.pt"), cfg, progress=False)
    elif args.stage == "fit":
        meta = run_fit(p["emb"], p["adm"], cfg)
        extra = {"pairs": meta["n_training_pairs"]}
    elif args.stage == "score":
        shutil.rmtree(p["scores"], ignore_errors=True)
        run_score(p["emb"], p["scores"], p["adm"], cfg, progress=False)
    elif args.stage == "evaluate":
        m = run_evaluate(p["scores"], p["report"], cfg)
        extra = {"auc": m["overall"]["auc"], "videos": m["videos"]}
    else:
        report = verify_output(p["emb_trivial"] if args.stage == "verify-embed" else p["scores"])
        extra = {"ok": report["ok"], "problems": report["problems"][:3]}
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_gb": peak_gb, **extra}), flush=True)


def plot(results: dict, path: str) -> None:
    plt = pyplot()
    sizes = sorted(int(n) for n in results)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for stage in STAGES:
        xs = [n for n in sizes if stage in results[str(n)]]
        if xs:
            a.plot(xs, [1e6 * results[str(n)][stage]["seconds"] / n for n in xs], "o-", label=stage)
            b.plot(xs, [results[str(n)][stage]["peak_rss_gb"] for n in xs], "o-", label=stage)
    a.set(xscale="log", yscale="log", xlabel="videos", ylabel="µs per video", title="time per video (flat = scales)")
    b.axhline(TARGET_RSS_GB, color="red", ls="--", label="target")
    b.set(xscale="log", xlabel="videos", ylabel="GB", title="driver peak RSS")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    write_figure(path, fig, tight=False)


def main() -> None:
    args = parse_args()
    if args.stage:
        return run_stage(args)
    out = result_stem("scale")
    results = json.load(open(out + ".json"))["results"] if os.path.exists(out + ".json") else {}
    for n in args.sizes:
        t0 = time.perf_counter()
        generate(args, n)
        print(f"n={n}: corpus ready ({time.perf_counter() - t0:.0f} s)", flush=True)
        row = results.setdefault(str(n), {})
        for stage in [s for s in STAGES if s in args.stages]:
            cmd = [sys.executable, "-m", "bench.scale", "--stage", stage, "--n", str(n),
                   "--workdir", args.workdir, "--frames", str(args.frames), "--dim", str(args.dim)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"n={n} {stage} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            row[stage] = json.loads(done.stdout.strip().splitlines()[-1])
            r = row[stage]
            print(f"n={n:>8} {stage:<13} {r['seconds']:8.1f} s {1e6 * r['seconds'] / n:9.1f} µs/video "
                  f"peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
        write_result(out, {"config": {"frames": args.frames, "dim": args.dim, "videos_per_part": args.videos_per_part},
                           "target": f"driver peak RSS < {TARGET_RSS_GB} GB at 1M; time per video within "
                                     f"{TARGET_FLATNESS}x from 10k to 1M", "results": results})
    plot(results, out + ".png")
    sizes = sorted(int(n) for n in results)
    print(f"\n{'stage':<13}" + "".join(f"{n:>14,}" for n in sizes) + "   (µs/video; peak RSS GB)")
    for stage in STAGES:
        cells = [results[str(n)].get(stage) for n in sizes]
        print(f"{stage:<13}" + "".join(f"{1e6 * c['seconds'] / n:>8.0f} {c['peak_rss_gb']:4.2f}" if c else f"{'-':>14}"
                                       for c, n in zip(cells, sizes)))
    print(f"results: {out}.json, {out}.png")


if __name__ == "__main__":
    main()
