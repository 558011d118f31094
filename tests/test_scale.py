"""What keeps the driver's cost flat as the corpus grows, as plain functions (no Ray): the
bookkeeping scans, the fit's pushed-down read and its pair cap, the training shards."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from difffake_ray import schema
from difffake_ray.pipeline.common import output_counts
from tests.conftest import toy_embeddings_table


def _write_parts(folder, table: pa.Table, videos_per_part: int) -> None:
    """Whole videos per part file, as the stages write them."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(set(table["video_id"].to_pylist()))
    for k in range(0, len(ids), videos_per_part):
        mask = pa.array([v in set(ids[k:k + videos_per_part]) for v in table["video_id"].to_pylist()])
        pq.write_table(table.filter(mask), folder / f"part-{k:05d}.parquet")


def test_bookkeeping_scans_agree_with_a_plain_count(tmp_path):
    table = toy_embeddings_table(n_videos=30, n_frames=5)
    statuses = table["video_status"].to_pylist()
    ids = table["video_id"].to_pylist()
    broken = {"v03", "v17"}
    table = table.set_column(table.schema.get_field_index("video_status"), "video_status",
                             pa.array(["unreadable" if v in broken else s for v, s in zip(ids, statuses)]))
    _write_parts(tmp_path / "out", table, videos_per_part=4)
    (tmp_path / "out" / "_run.json").write_text("{}")  # bookkeeping files are not data
    counts = output_counts(str(tmp_path / "out"))
    assert counts == {"videos": {"ok": 28, "unreadable": 2}, "rows": 150, "ok_rows": 150}
    assert output_counts(str(tmp_path / "empty")) == {"videos": {}, "rows": 0, "ok_rows": 0}


def test_fit_reads_only_real_training_videos_and_caps_its_pairs(tmp_path):
    from difffake_ray.pipeline.fit import collect_training_pairs

    table = toy_embeddings_table(n_videos=30, n_frames=8)
    _write_parts(tmp_path / "emb", table, videos_per_part=3)
    rows = table.to_pylist()
    train_reals = {r["video_id"] for r in rows if r["label"] == "real" and r["split"] == "train"}
    X, owners = collect_training_pairs(str(tmp_path / "emb"), "sub2", 30, 1, 0, True)
    assert set(owners) == train_reals and len(X) == 28 * len(train_reals)  # 8 frames: 28 distinct pairs
    capped, capped_owners = collect_training_pairs(str(tmp_path / "emb"), "sub2", 30, 1, 0, True, max_pairs=45)
    assert capped.shape == (45, X.shape[1]) and set(capped_owners) <= train_reals
    again, _ = collect_training_pairs(str(tmp_path / "emb"), "sub2", 30, 1, 0, True, max_pairs=45)
    assert np.array_equal(capped, again)  # the sample is seeded
    # every capped row is one of the uncapped pairs of its video
    full = {tuple(np.round(r, 6)) for r in X}
    assert all(tuple(np.round(r, 6)) in full for r in capped)


def _faces(n_videos: int, frames: int) -> pa.Table:
    rows = []
    for v in range(n_videos):
        label = "fake" if v % 4 == 3 else "real"
        split = "test" if v % 5 == 4 else "train"
        for f in range(frames + v % 3):  # unequal lengths
            rows.append(dict(video_id=f"v{v:02d}", uri="u", label=label, dataset="d", method="m", split=split,
                             video_status="ok", status="ok", error=None, frame_index=f, crop=b"x",
                             landmarks=[0.0] * 136))
    return pa.Table.from_pylist(rows, schema=schema.FACES_SCHEMA)


def test_training_workers_read_their_own_shard_of_real_training_videos(tmp_path):
    from difffake_ray.train.data import load_real_faces, shard_by_video, take_shard

    faces = _faces(20, 6)
    _write_parts(tmp_path / "faces", faces, videos_per_part=4)
    keys = load_real_faces(str(tmp_path / "faces"), "train", with_images=False)
    rows = faces.to_pylist()
    want = {(r["video_id"], r["frame_index"]) for r in rows if r["label"] == "real" and r["split"] == "train"}
    assert {(r["video_id"], r["frame_index"]) for r in keys} == want and "crop" not in keys[0]

    shards, steps = shard_by_video(keys, world=3, batch_size=4, seed=0)
    flat = [v for s in shards for v in s["videos"]]
    assert sorted(flat) == sorted({v for v, _ in want}) and len(flat) == len(set(flat))  # whole videos, once
    sizes = [len(take_shard(keys, s)) for s in shards]
    assert sum(sizes) == len(keys) and max(sizes) - min(sizes) <= 8 and steps == min(sizes) // 4
    mine = load_real_faces(str(tmp_path / "faces"), "train", videos=shards[1]["videos"])
    assert {r["video_id"] for r in mine} == set(shards[1]["videos"]) and mine[0]["crop"] == b"x"

    # fewer videos than workers: dealt by face, every face once
    two = [r for r in keys if r["video_id"] in {"v00", "v01"}]
    shards, steps = shard_by_video(two, world=4, batch_size=2, seed=0)
    dealt = [(r["video_id"], r["frame_index"]) for s in shards for r in take_shard(two, s)]
    assert sorted(dealt) == sorted((r["video_id"], r["frame_index"]) for r in two)
    assert steps == min(len(take_shard(two, s)) for s in shards) // 2


def test_loader_workers_default_to_the_spare_cpus_of_a_gpu_worker():
    from difffake_ray.config import TrainConfig
    from difffake_ray.train.loop import loader_workers

    assert loader_workers(TrainConfig(cpus_per_worker=8), on_gpu=True) == 7
    assert loader_workers(TrainConfig(cpus_per_worker=8), on_gpu=False) == 0
    assert loader_workers(TrainConfig(cpus_per_worker=8, num_loader_workers=2), on_gpu=True) == 2


def test_embeddings_column_round_trips_through_numpy_without_python_floats():
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    column = schema.embeddings_from_numpy(values, valid=np.array([True, False, True, True]))
    assert column.null_count == 1 and column[1].as_py() is None
    back = schema.embeddings_to_numpy(pa.chunked_array([column.slice(2)]))
    assert np.array_equal(back, values[2:])
