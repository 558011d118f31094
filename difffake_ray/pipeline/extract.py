"""extract: manifest -> faces Parquet, on Ray Data.

One actor per CPU holds a FaceExtractor (detector and landmarker loaded once) and handles a batch
of videos (``part_size``: at most ``videos_per_file``, fewer for a small corpus, so that every
worker has parts): it extracts every video and writes that batch's rows as one part file,
atomically, named by its video ids. The driver streams back one summary row per video for
progress and accounting. A rerun skips videos already present in the output (resume) and never
writes a video twice.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema, storage
from ..config import Config, ExtractConfig
from ..datasets.manifest import load_manifest
from ..faces.extractor import EXTRACTOR_VERSION, STEPS, FaceExtractor
from ..runtime import cluster_cpus, ray_session, write_run_record
from .claim import OutputClaimError, check_apart, claim, overlap_key, without_as_before
from .common import MANIFEST_RECORD, output_counts, part_name, resume_state, rows_to_dicts, summary_line


class ExtractAndWrite:
    """Ray Data callable class: a batch of manifest rows -> part file + one summary row per video."""

    def __init__(self, cfg: ExtractConfig, out_uri: str):
        self.extractor = FaceExtractor(cfg)
        self.out_uri = out_uri

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, List[Any]]:
        videos = rows_to_dicts(batch)
        rows: List[Dict[str, Any]] = []
        summary: Dict[str, List[Any]] = {"video_id": [], "video_status": [], "n_frames": [], "n_faces": [],
                                         "error": [], "worker": [], "busy_s": []}
        summary.update({f"{STEP_PREFIX}{k}": [] for k in STEPS + ("write",)})
        clock = self.extractor.clock
        for video in videos:
            before, t = dict(clock.seconds), time.perf_counter()
            video_rows = self.extractor.extract(video)
            summary["busy_s"].append(time.perf_counter() - t)
            for k in STEPS:
                summary[f"{STEP_PREFIX}{k}"].append(clock.seconds[k] - before.get(k, 0.0))
            rows.extend(video_rows)
            summary["video_id"].append(video["video_id"])
            summary["video_status"].append(video_rows[0]["video_status"])
            summary["n_frames"].append(sum(r["frame_index"] is not None for r in video_rows))
            summary["n_faces"].append(sum(r["status"] == schema.FRAME_OK for r in video_rows))
            summary["error"].append(video_rows[0]["error"] if video_rows[0]["video_status"] != "ok" else None)
        name = part_name(summary["video_id"])
        t = time.perf_counter()
        storage.write_parquet_atomic(schema.table_from_rows(rows, schema.FACES_SCHEMA),
                                     storage.join(self.out_uri, name))
        write_s = (time.perf_counter() - t) / max(1, len(videos))  # the part's write, shared by its videos
        summary[f"{STEP_PREFIX}write"] = [write_s] * len(videos)
        summary["busy_s"] = [b + write_s for b in summary["busy_s"]]
        summary["worker"] = [os.getpid()] * len(videos)
        summary["file"] = [name] * len(videos)
        return summary


STEP_PREFIX = "seconds_"
# A corpus is cut into at least this many parts (fewer videos a part than videos_per_file when it is
# small), so that up to this many workers all have work from the first video
MIN_PARTS = 256


def part_size(n_manifest: int, videos_per_file: int) -> int:
    """Videos per part for a manifest of ``n_manifest`` videos: at most ``videos_per_file``, and
    small enough to make MIN_PARTS parts. It depends on the manifest alone, never on the workers or
    on what a rerun has left: a rerun cuts the videos still to do into the very parts (and part
    names) of the first run, so a part that a killed run was still writing is replaced, never
    written twice under two names."""
    return max(1, min(videos_per_file, math.ceil(n_manifest / MIN_PARTS)))


# extract settings that change how a video is run, not what its rows hold
EXECUTION_ONLY = ("videos_per_file", "decode_threads", "opencv_threads")


# settings added after outputs were written without them, at the value that does what they did
AS_BEFORE = {"align": False, "extractor_version": 1}


def extract_settings(ecfg: ExtractConfig) -> Dict[str, Any]:
    """The settings that made an extract output's rows (checked on every rerun into it)."""
    settings = {k: v for k, v in dataclasses.asdict(ecfg).items() if k not in EXECUTION_ONLY}
    return without_as_before(dict(settings, extractor_version=EXTRACTOR_VERSION), AS_BEFORE)


def run_extract(source: str, out_uri: str, cfg: Config, adapter: Optional[str] = None,
                progress: bool = True, split: Optional[str] = None,
                adapter_options: Optional[Dict[str, Any]] = None, redo_failed: bool = False,
                overwrite: bool = False) -> Dict[str, Any]:
    """Extract faces of every video in ``source`` (folder, manifest file or adapter root) into the
    Parquet folder ``out_uri``. Returns the run record (counts per video status, timing).

    A rerun keeps the videos already done and redoes those whose status is transient (missing,
    error; every failure with ``redo_failed``); into a folder made with other settings it refuses
    unless ``overwrite``."""
    started = time.time()
    source, out_uri = storage.absolute(source), storage.absolute(out_uri)
    # a malformed manifest fails here, before any work
    manifest = load_manifest(source, adapter=adapter, split=split, **(adapter_options or {}))
    check_apart(out_uri, {"source": source})
    check_videos_apart(out_uri, manifest)
    with claim(out_uri, "extract", extract_settings(cfg.extract), overwrite):
        return _extract(manifest, source, out_uri, cfg, adapter, progress, split, adapter_options, redo_failed,
                        started)


def check_videos_apart(out_uri: str, manifest: pa.Table) -> None:
    """Refuse an output folder that holds one of the manifest's videos (one vectorised pass)."""
    uris = manifest["uri"]
    for prefix in {storage.absolute(out_uri).rstrip("/"), overlap_key(out_uri)}:
        inside = pc.or_(pc.equal(uris, prefix), pc.starts_with(uris, prefix + "/"))
        if pc.any(inside).as_py():
            first = uris.filter(inside)[0].as_py()
            raise OutputClaimError(f"{out_uri} holds the input video {first}: write the output to a folder of its "
                                   f"own, apart from the videos")


def _extract(manifest: pa.Table, source: str, out_uri: str, cfg: Config, adapter, progress, split, adapter_options,
             redo_failed: bool, started: float) -> Dict[str, Any]:
    storage.remove_temporaries(out_uri)
    storage.write_parquet_atomic(manifest, storage.join(out_uri, MANIFEST_RECORD))
    done, redone = resume_state(out_uri, redo_failed)
    if redone:
        print(f"extract: redoing {sum(redone.values())} failed or changed video(s) "
              f"({', '.join(f'{k} {v}' for k, v in sorted(redone.items()))}) and the others of their part files",
              flush=True)
    # the manifest stays an Arrow table (a million rows as dicts would cost the driver ~1 GB)
    todo = manifest.filter(pc.invert(pc.is_in(manifest["video_id"], pa.array(sorted(done), pa.string()))))
    ecfg = cfg.extract
    execution: Dict[str, Any] = {}
    if todo.num_rows:
        with ray_session(cfg.ray):
            import ray

            workers = max(1, int(cluster_cpus()))  # one per core: the extractor is single-threaded
            k = part_size(manifest.num_rows, ecfg.videos_per_file)
            n_blocks = max(1, math.ceil(todo.num_rows / k))
            pool = min(workers, n_blocks)
            # A second part queued on each actor keeps it busy while its next part is handed over
            # (240 videos on 2 cores: workers busy 83% -> 96% of the time). With fewer than two parts
            # a worker, one at a time: a part queued on a busy actor is one that an idle actor, or
            # one still starting, cannot take.
            in_flight = 2 if n_blocks >= 2 * pool else 1
            # one block per part: the actor pool gets a task per part file. Whole parts are done or
            # not, so the videos to do fall into the same k-blocks of the manifest as the first run's
            ds = ray.data.from_blocks([todo.slice(i * k, k) for i in range(n_blocks)])
            summaries = ds.map_batches(
                ExtractAndWrite,
                fn_constructor_kwargs={"cfg": ecfg, "out_uri": out_uri},
                batch_size=k,
                batch_format="numpy",
                num_cpus=1,
                # a fixed pool: autoscaling up from one actor leaves cores idle on short jobs
                # Ray Data restarts a dead actor and retries its task (max_restarts and
                # max_task_retries default to -1 for actor pools): the fault tests rely on it
                compute=ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=in_flight),
            )
            t = time.time()
            execution = _drain(summaries, todo.num_rows, progress)
            execution.update(workers=pool, videos_per_part=k, parts=n_blocks, seconds=round(time.time() - t, 2))
            execution["utilisation"] = round(execution["busy_s"] / max(1e-9, execution["seconds"] * pool), 3)
    tally = output_counts(out_uri)
    counts, n_faces = tally["videos"], tally["ok_rows"]
    record = write_run_record(
        out_uri, "extract", cfg, inputs={"source": source, "adapter": adapter, "split": split,
                                         "adapter_options": adapter_options or {},
                                         "videos": manifest.num_rows, "resumed_skipped": len(done),
                                         "redone_failed": redone},
        counts={"videos": counts, "faces": n_faces, "rows": tally["rows"]}, started=started,
        extra={"execution": execution},
    )
    seconds = time.time() - started
    busy = (f"; {execution['workers']} workers busy {execution['utilisation']:.0%} of the time" if execution
            else "")
    record["summary"] = summary_line("extract", counts, seconds,
                                     f"{n_faces} faces written, {len(done)} videos already done{busy}")
    print(record["summary"], flush=True)
    return record


def _drain(summaries, total: int, progress: bool) -> Dict[str, Any]:
    """Consume the stream of per-video summaries, with a per-video progress bar. -> how the work
    went: the workers that did some, their busy seconds, and the seconds of each step (STEPS)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="extract videos", unit="video", disable=not progress)
    failed, busy, workers = 0, 0.0, set()
    steps = dict.fromkeys(STEPS + ("write",), 0.0)
    for row in summaries.iter_rows():
        failed += row["video_status"] != "ok"
        busy += row["busy_s"]
        workers.add(row["worker"])
        for k in steps:
            steps[k] += row[f"{STEP_PREFIX}{k}"]
        bar.update(1)
        bar.set_postfix(failed=failed)
    bar.close()
    return {"workers_used": len(workers), "busy_s": round(busy, 2),
            "step_seconds": {k: round(v, 3) for k, v in steps.items()}}
