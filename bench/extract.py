"""Benchmark: the extract stage vs. a naive baseline, on one fixed synthetic corpus, in one run.

Baseline (the obvious way): one video after another; cv2.VideoCapture reads every frame; full-
resolution Haar (default detectMultiScale arguments) on each of the 40 sampled frames; the same
landmarks, crop and PNG encode. Ours: the Ray Data stage (sequential PyAV decode converting only
sampled frames, the configured detector (YuNet by default) on a downscaled frame, one worker per
core).

Prints videos/s and videos/s per core for both, the ratio, and our face recall against the
baseline's detections on the same frames. The baseline is pinned to one core. Ours is reported
twice: over the whole job (actor start-up and model loading included, which a 24-video job cannot
amortise) and in steady state (first to last part file written), beside the seconds per video of
each step (decode, detect, landmarks, crop, encode, motion, write: the stage's own clock), how
busy its workers were, and the ceiling: the ratio that the steps' own seconds would give with no
start-up, hand-over or Ray at all. Writes
bench/results/extract-<corpus>-<detector>[-<overrides>]-<machine>-...json (``bench/common.py``)
with the versions and every extract setting inside.

    python -m bench.extract                     # 24 videos, 10 s, 1280x720
    python -m bench.extract --videos 6 --seconds 4
    python -m bench.extract --repeat 10         # 240 videos: the 24 listed ten times over

``--repeat N`` runs the stage on a manifest that lists each rendered video N times under distinct
ids (rendering 240 videos takes ~40 min; decoding and detecting one does not depend on having
seen it before). The naive loop's time is then its time on the rendered videos times N: it does
one video after another, so its rate does not depend on the corpus size.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.common import machine, result_stem, write_result
from difffake_ray import schema, storage
from difffake_ray.config import CorpusConfig, load_config
from difffake_ray.faces.codec import encode_image
from difffake_ray.faces.crop import crop_face, crop_window, to_crop_coordinates
from difffake_ray.faces.detectors import haar_cascade_path, largest_face
from difffake_ray.faces.landmarkers import create_landmarker
from difffake_ray.faces.video import sample_frame_indices


def naive_extract(uri: str, n_frames: int, classifier, landmarker) -> dict:
    import cv2

    cap = cv2.VideoCapture(uri)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    found = {}
    for i in sample_frame_indices(len(frames), n_frames):
        rgb = cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)
        gray = cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY)
        box = largest_face(classifier.detectMultiScale(gray))
        if box is None:
            found[int(i)] = None
            continue
        window = crop_window(box, 1.3, rgb.shape[1], rgb.shape[0])
        to_crop_coordinates(landmarker.predict(rgb, box), window, 224)
        encode_image(crop_face(rgb, window, 224), "png")
        found[int(i)] = box
    return found


def repeated(corpus: str, videos: list, baseline: dict, base_s: float, times: int):
    """The corpus listed ``times`` over under ids ``<id>-r<k>`` (a manifest beside it), with the
    naive loop's faces and seconds to match."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(v, video_id=f"{v['video_id']}-r{k}", uri=os.path.abspath(os.path.join(corpus, v["uri"])))
            for k in range(times) for v in videos]
    path = os.path.join(corpus, f"manifest-x{times}.parquet")
    pq.write_table(pa.Table.from_pylist(rows), path)
    faces = {r["video_id"]: baseline[r["video_id"].rsplit("-r", 1)[0]] for r in rows}
    return path, rows, faces, base_s * times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workdir", default="bench/out/extract")
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1, help="list each rendered video this many times (see above)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="reuse the naive loop's last timing on this corpus and machine (when trying settings)")
    args = ap.parse_args()

    import cv2

    corpus = os.path.join(args.workdir, f"corpus-{args.videos}x{args.seconds:g}s-720p")
    if not os.path.exists(os.path.join(corpus, "manifest.parquet")):
        from difffake_ray.datasets.synthetic import make_corpus

        make_corpus(corpus, CorpusConfig(n_videos=args.videos, min_seconds=args.seconds,
                                         max_seconds=args.seconds, sizes=[[1280, 720]],
                                         include_astronaut=False, seed=123))
    from difffake_ray.datasets.manifest import load_manifest

    videos = load_manifest(corpus).to_pylist()

    # --- baseline: one process, one core (pinned: FFmpeg inside VideoCapture would thread otherwise);
    # kept beside the corpus for --reuse-baseline (trying settings), measured afresh by default
    cached = os.path.join(corpus, f"baseline-{machine()}.json")
    reused = bool(args.reuse_baseline and os.path.exists(cached))
    if reused:
        with open(cached) as fh:
            saved = json.load(fh)
        base_s = saved["seconds"]
        baseline = {vid: {int(i): b for i, b in d.items()} for vid, d in saved["boxes"].items()}
    else:
        cv2.setNumThreads(1)
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
        classifier = cv2.CascadeClassifier(haar_cascade_path("haarcascade_frontalface_default.xml"))
        landmarker = create_landmarker("dlib68")
        t0 = time.perf_counter()
        baseline = {v["video_id"]: naive_extract(v["uri"], 40, classifier, landmarker) for v in videos}
        base_s = time.perf_counter() - t0
        os.sched_setaffinity(0, affinity)
        with open(cached, "w") as fh:
            json.dump({"seconds": base_s, "boxes": {vid: {i: (None if b is None else [int(x) for x in b])
                                                          for i, b in d.items()} for vid, d in baseline.items()}},
                      fh)

    job = corpus
    if args.repeat > 1:
        job, videos, baseline, base_s = repeated(corpus, videos, baseline, base_s, args.repeat)

    # --- ours: the Ray Data stage
    cfg = load_config(None, [f"ray.num_cpus={args.cpus}"] + args.overrides)
    from difffake_ray.pipeline.extract import extract_settings, run_extract
    from difffake_ray.runtime import init_ray

    init_ray(cfg.ray)
    out = os.path.join(args.workdir, "faces")
    storage.remove(out, recursive=True)
    t0 = time.perf_counter()
    record = run_extract(job, out, cfg, progress=False)
    ours_s = time.perf_counter() - t0
    execution = record["execution"]

    # steady state: videos completed between the first and the last part file written (actor
    # start-up, model loading and the driver's bookkeeping are paid once per job, not per video)
    import pyarrow.parquet as pq

    parts = sorted((os.path.getmtime(f), len(set(pq.read_table(f, columns=["video_id"])["video_id"].to_pylist())))
                   for f in storage.list_data_files(out))
    steady_rate = sum(n for _, n in parts[1:]) / max(1e-9, parts[-1][0] - parts[0][0]) if len(parts) > 1 else 0.0

    faces = storage.read_parquet_dir(out, columns=["video_id", "frame_index", "status", "box"])
    ours = {(r["video_id"], r["frame_index"]): r for r in faces.to_pylist()}
    base_hits = [(vid, i) for vid, d in baseline.items() for i, b in d.items() if b is not None]
    recovered = sum(1 for k in base_hits if ours.get(k, {}).get("status") == schema.FRAME_OK)
    ours_hits = sum(1 for r in ours.values() if r["status"] == schema.FRAME_OK)
    n = len(videos)
    work_s = sum(execution["step_seconds"].values())
    res = {
        "videos": n, "seconds_per_video": args.seconds, "size": "1280x720", "frames_per_video": 40,
        "baseline_s": round(base_s, 2), "baseline_videos_per_s": round(n / base_s, 4),
        "baseline_cores": 1, "ours_s": round(ours_s, 2), "ours_videos_per_s": round(n / ours_s, 4),
        "ours_cores": args.cpus,
        "speedup_per_core": round((n / ours_s / args.cpus) / (n / base_s), 2),
        "speedup_wall": round(base_s / ours_s, 2),
        "ours_steady_videos_per_s": round(steady_rate, 4),
        "speedup_per_core_steady": round((steady_rate / args.cpus) / (n / base_s), 2),
        "baseline_faces": len(base_hits), "ours_faces": ours_hits,
        "recall_vs_baseline": round(recovered / max(1, len(base_hits)), 4),
        "ours_faces_over_baseline_faces": round(ours_hits / max(1, len(base_hits)), 4),
        "overrides": args.overrides, "baseline_reused": reused, "repeat": args.repeat,
        "workers": execution["workers"], "workers_used": execution["workers_used"],
        "videos_per_part": execution["videos_per_part"], "parts": execution["parts"],
        "worker_utilisation": execution["utilisation"],
        "seconds_per_video_by_step": {k: round(v / n, 4) for k, v in execution["step_seconds"].items()},
        # what one worker spends on a video, and the ratio a pool with no overhead at all (no start-up,
        # no hand-over, no Ray) would reach with it: how far the job is from the work's own bound
        "work_s_per_video": round(work_s / n, 4),
        "ceiling_per_core": round((base_s / n) / max(1e-9, work_s / n), 2),
        "settings": extract_settings(cfg.extract),
    }
    print(json.dumps(res, indent=2))
    print("per video, by step (one worker's seconds):  " + "  ".join(
        f"{k} {v / n:.3f} s ({100 * v / max(work_s, 1e-9):.0f}%)" for k, v in execution["step_seconds"].items())
        + f"  = {work_s / n:.3f} s: x{res['ceiling_per_core']} per core with no overhead at all")
    print(f"workers {execution['workers']} ({execution['workers_used']} did videos), {execution['parts']} parts of "
          f"{execution['videos_per_part']}, busy {100 * execution['utilisation']:.0f}% of the stage's time")
    print(f"baseline {res['baseline_videos_per_s']:.3f} videos/s (1 core) | ours {res['ours_videos_per_s']:.3f} "
          f"videos/s ({args.cpus} cores) | per core x{res['speedup_per_core']} (steady state "
          f"x{res['speedup_per_core_steady']}) | recall vs baseline "
          f"{100 * res['recall_vs_baseline']:.1f}% ({ours_hits} vs {len(base_hits)} faces)")
    # what was run in the name (with the machine and versions); every setting inside
    corpus_name = f"{n // args.repeat}x{args.seconds:g}s-720p" + (f"-x{args.repeat}" if args.repeat > 1 else "")
    write_result(result_stem("extract", corpus_name, cfg.extract.detector, *args.overrides), res)


if __name__ == "__main__":
    main()
