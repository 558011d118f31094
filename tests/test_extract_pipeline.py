"""The extract stage end to end through the session's local Ray."""

import os

import pytest

from difffake_ray import schema, storage
from difffake_ray.pipeline.extract import run_extract
from difffake_ray.runtime import read_run_record

from .conftest import fast_config

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def mixed_manifest(corpus, tmp_path_factory):
    """The synthetic corpus plus a missing file, a text file and a zero-byte 'video'."""
    import csv

    from difffake_ray.datasets.manifest import load_manifest

    d = tmp_path_factory.mktemp("mixed")
    (d / "notvideo.mp4").write_text("hello\n" * 100)
    (d / "empty.mp4").write_bytes(b"")
    rows = load_manifest(corpus).to_pylist()
    rows += [dict(video_id="bad/missing", uri=str(d / "missing.mp4"), label="real", dataset="bad",
                  method="original", split="test"),
             dict(video_id="bad/notvideo", uri=str(d / "notvideo.mp4"), label="fake", dataset="bad",
                  method="x", split="test"),
             dict(video_id="bad/empty", uri=str(d / "empty.mp4"), label="fake", dataset="bad",
                  method="x", split="test")]
    path = d / "manifest.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=schema.MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return str(path), len(rows)


def test_extract_end_to_end_with_bad_files_and_resume(ray_local, mixed_manifest, tmp_path):
    manifest, n_videos = mixed_manifest
    out = str(tmp_path / "faces")
    cfg = fast_config()
    record = run_extract(manifest, out, cfg, progress=False)

    faces = storage.read_parquet_dir(out, schema=schema.FACES_SCHEMA)
    assert faces.schema.equals(schema.FACES_SCHEMA)  # the declared schema round-trips
    per_video = {}
    for r in faces.select(["video_id", "video_status", "error"]).to_pylist():
        per_video.setdefault(r["video_id"], r)
    assert len(per_video) == n_videos  # every input video is in the output
    assert per_video["bad/missing"]["video_status"] == schema.MISSING
    assert "missing.mp4" in per_video["bad/missing"]["error"]
    assert per_video["bad/notvideo"]["video_status"] in (schema.UNREADABLE, schema.NO_FRAMES)
    assert per_video["bad/empty"]["video_status"] in (schema.UNREADABLE, schema.NO_FRAMES)
    synthetic = [v for k, v in per_video.items() if k.startswith("synthetic/")]
    assert all(v["video_status"] == schema.VIDEO_OK for v in synthetic)
    assert sum(record["counts"]["videos"].values()) == n_videos
    assert read_run_record(out)["counts"]["videos"]["ok"] == len(synthetic)
    ok_rows = [r for r in faces.select(["status", "frame_index"]).to_pylist() if r["status"] == "ok"]
    assert len(ok_rows) >= 0.8 * len(synthetic) * cfg.extract.n_frames

    # Interrupted run: drop one part file and start again -> same table, no duplicates.
    parts = storage.list_data_files(out)
    removed = parts[0]
    storage.remove(removed)
    run_extract(manifest, out, cfg, progress=False)
    again = storage.read_parquet_dir(out, schema=schema.FACES_SCHEMA)
    key = lambda t: sorted(zip(t["video_id"].to_pylist(), [i if i is not None else -1 for i in t["frame_index"].to_pylist()]))  # noqa: E731
    assert key(again) == key(faces)
    assert len(set(key(again))) == again.num_rows  # no duplicate (video, frame)

    # A third run redoes only the transient failure (the missing file may be there now): the part
    # holding it is rewritten, every other part is left as it was, and the table is the same.
    before = {f: os.stat(f).st_mtime_ns for f in storage.list_data_files(out)}
    holder = next(f for f in before if "bad/missing" in storage.read_parquet_files([f], columns=["video_id"])
                  ["video_id"].to_pylist())
    rec = run_extract(manifest, out, cfg, progress=False)
    after = {f: os.stat(f).st_mtime_ns for f in storage.list_data_files(out)}
    assert rec["inputs"]["redone_failed"] == {"missing": 1}
    assert set(after) == set(before)  # the same videos batch again under the same part name
    assert [f for f in before if after[f] != before[f]] == [holder]
    in_holder = len(set(storage.read_parquet_files([holder], columns=["video_id"])["video_id"].to_pylist()))
    assert rec["inputs"]["resumed_skipped"] == n_videos - in_holder
    assert key(storage.read_parquet_dir(out, schema=schema.FACES_SCHEMA)) == key(faces)


def test_part_sizes_follow_the_manifest_alone():
    """Small corpora get parts of one video (every worker has some); large ones the configured
    size. The cut never depends on the workers or on what a rerun has left to do, so a rerun's
    parts are the first run's, name for name."""
    from difffake_ray.pipeline.common import part_name
    from difffake_ray.pipeline.extract import MIN_PARTS, part_size

    assert part_size(24, 16) == 1 and part_size(8, 16) == 1  # 24 parts: where 16 a part left one core idle
    assert part_size(1_000_000, 16) == 16 and part_size(MIN_PARTS * 3, 16) == 3
    videos = [f"v{i}" for i in range(1000)]
    k = part_size(len(videos), 16)
    first = {part_name(videos[i:i + k]) for i in range(0, len(videos), k)}
    done = set(videos[k:3 * k]) | set(videos[-k:])  # whole parts the first run wrote before it died
    todo = [v for v in videos if v not in done]
    rerun = {part_name(todo[i:i + k]) for i in range(0, len(todo), k)}
    assert rerun <= first and len(rerun) == len(first) - 3


def test_a_corpus_of_fewer_parts_than_workers_uses_every_worker(ray_local, corpus, tmp_path):
    """8 videos at extract.videos_per_file 16 were one part, extracted by one worker while the other
    idled: now every worker gets parts, and the run record says how busy they were."""
    from difffake_ray.config import load_config

    cfg = load_config(None, ["extract.n_frames=4", "extract.videos_per_file=16"])
    record = run_extract(corpus, str(tmp_path / "faces"), cfg, progress=False)
    execution = read_run_record(str(tmp_path / "faces"))["execution"]
    assert execution == record["execution"]
    assert execution["workers"] == 2 and execution["parts"] == 8
    assert execution["workers_used"] == 2  # both cores did videos
    assert 0 < execution["utilisation"] <= 1.0
    steps = execution["step_seconds"]
    assert set(steps) == {"decode", "detect", "landmarks", "crop", "encode", "motion", "write"}
    assert all(v >= 0 for v in steps.values()) and steps["decode"] > 0 and steps["detect"] > 0


def test_an_output_from_before_alignment_existed_still_resumes():
    """extract.align came after outputs were written without it: at its old behaviour (false) it is
    left out of the settings record, so those outputs resume; set, it is recorded and checked."""
    from difffake_ray.config import ExtractConfig
    from difffake_ray.pipeline.extract import extract_settings

    assert "align" not in extract_settings(ExtractConfig())
    assert extract_settings(ExtractConfig(align=True))["align"] is True


def test_an_output_of_another_extractor_version_is_refused_not_mixed(monkeypatch):
    """Outputs carry the version of what the extractor made of their videos (left out at version 1,
    the rows of the outputs written before version 2); one made by a version whose boxes moved is
    refused."""
    from difffake_ray.config import ExtractConfig
    from difffake_ray.pipeline import extract

    assert extract.extract_settings(ExtractConfig())["extractor_version"] == extract.EXTRACTOR_VERSION >= 2
    monkeypatch.setattr(extract, "EXTRACTOR_VERSION", 1)
    assert "extractor_version" not in extract.extract_settings(ExtractConfig())
