"""Benchmark: `detect` latency for 10 s 720p videos on this machine, cold and warm.

Two synthetic 10 s 1280x720 H.264 videos (one real, one inner-face swap) go through
``python cli.py detect A B --detector D --json`` in a fresh process: the first video is cold (the
process starts, imports, loads the bundle), the second warm (same process). Reported (median of
``--repeat`` processes): process start to the first verdict, the second video's time, and per
video the split between decode + face detection, waiting for the backbone's worker process,
embedding and scoring (and checking the bundle, for the first).

Target (issue "One video in, a verdict"): under 10 s cold and under 3 s warm on 2 cores with the
CPU backbone.

    python -m bench.detect --detector out/demo/detector
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import result_stem, write_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", required=True, help="a bundle written by `cli.py bundle`")
    ap.add_argument("--workdir", default="out/bench-detect")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes; the median is reported")
    args = ap.parse_args()

    from difffake_ray.config import CorpusConfig
    from difffake_ray.datasets.synthetic import make_corpus

    corpus = os.path.join(args.workdir, "videos")
    if not os.path.exists(os.path.join(corpus, "manifest.parquet")):
        make_corpus(corpus, CorpusConfig(n_videos=2, min_seconds=args.seconds, max_seconds=args.seconds,
                                         sizes=[[1280, 720]], include_astronaut=False, fake_methods=["inner_swap"]),
                    progress=False)
    import pyarrow.parquet as pq

    videos = [os.path.join(corpus, u) for u in pq.read_table(os.path.join(corpus, "manifest.parquet"))["uri"].to_pylist()]
    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "detect", *videos, "--detector",
                               args.detector, "--json"], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        results = [json.loads(line) for line in done.stdout.strip().splitlines()]
        warm = sum(results[1]["seconds"].values())
        runs.append({"process_wall_s": round(wall, 2), "cold_s": round(wall - warm, 2),  # process start to 1st verdict
                     "warm_s": round(warm, 2), "per_video": results})
    median = sorted(runs, key=lambda r: r["cold_s"])[len(runs) // 2]
    cold, warm = median["cold_s"], median["warm_s"]
    report = {"video": f"{args.seconds:g} s, 1280x720, H.264", "cold_s": cold, "warm_s": warm,
              "runs_cold_s": [r["cold_s"] for r in runs], "runs_warm_s": [r["warm_s"] for r in runs],
              "median_run": median, "target": "cold < 10 s, warm < 3 s", "target_met": cold < 10 and warm < 3}
    results = median["per_video"]
    print(f"cold (process start to first verdict): {cold:.1f} s; warm (second video): {warm:.1f} s "
          f"(median of {len(runs)}: cold {report['runs_cold_s']}); target cold < 10 s, warm < 3 s")
    for r in results:
        print(f"  {os.path.basename(r['video'])}: {r['status']} score {r['score']} verdict {r['verdict']}; "
              + ", ".join(f"{k} {v:.2f} s" for k, v in r["seconds"].items()))
    out = write_result(result_stem("detect"), report)
    print(f"written {out}")


if __name__ == "__main__":
    main()
