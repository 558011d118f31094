"""The same stages on other filesystems: fsspec ``memory://``, ``file://`` URIs through Ray workers,
and ``s3://`` against a local S3 stand-in (moto's server, offline)."""

from __future__ import annotations

import os
import socket

import pyarrow as pa
import pytest

from difffake_ray import schema, storage
from difffake_ray.pipeline.fit import run_fit
from difffake_ray.adm.persistence import load_model
from difffake_ray.datasets.manifest import load_manifest, write_manifest
from difffake_ray.pipeline.evaluate import run_evaluate
from tests.conftest import fast_config, toy_embeddings_table


def fit_and_evaluate_on(base: str) -> dict:
    """manifest -> fit -> score (driver-side) -> evaluate, every file under ``base``."""
    cfg = fast_config()
    cfg.fit.min_frame_gap = cfg.score.min_frame_gap = 1
    cfg.fit.n_components = 1  # a few toy pairs in 8-d: one Gaussian, not three
    storage.write_parquet_atomic(toy_embeddings_table(), storage.join(base, "emb", "part-0.parquet"))
    meta = run_fit(storage.join(base, "emb"), storage.join(base, "adm"), cfg)
    model, meta2 = load_model(storage.join(base, "adm"))
    assert meta2["combination"] == meta["combination"]
    from difffake_ray.adm.scoring import score_videos

    scores = score_videos(storage.read_parquet_dir(storage.join(base, "emb")), model, meta2, cfg.score.pairs_per_video, 1, 0)
    storage.write_parquet_atomic(pa.Table.from_pylist(scores, schema=schema.SCORES_SCHEMA),
                                 storage.join(base, "scores", "dataset=toy", "part-0.parquet"))
    metrics = run_evaluate(storage.join(base, "scores"), storage.join(base, "report"), cfg)
    for name in ("metrics.json", "roc.png", "score_hist.png", "_run.json"):
        assert storage.exists(storage.join(base, "report", name)), name
    return metrics


def test_memory_filesystem_end_to_end_on_the_driver():
    base = "memory://difffake-test"
    storage.remove(base, recursive=True)
    metrics = fit_and_evaluate_on(base)
    assert metrics["overall"]["auc"] > 0.9
    # temporaries and records are invisible to readers
    storage.write_bytes_atomic(storage.join(base, "emb", "_run.json"), b"{}")
    assert [f.rsplit("/", 1)[1] for f in storage.list_data_files(storage.join(base, "emb"))] == ["part-0.parquet"]


def test_manifest_csv_on_memory_resolves_relative_uris():
    base = "memory://manifests"
    with storage.open_uri(storage.join(base, "m.csv"), "wb") as fh:
        fh.write(b"video_id,uri,label,split\na,videos/a.mp4,real,train\nb,s3://x/b.mp4,fake,test\n")
    t = load_manifest(storage.join(base, "m.csv"))
    assert t["uri"].to_pylist() == ["memory://manifests/videos/a.mp4", "s3://x/b.mp4"]
    write_manifest(t, storage.join(base, "out.parquet"))
    assert load_manifest(storage.join(base, "out.parquet")).equals(t)


@pytest.mark.ray
def test_file_uris_through_ray_workers(ray_local, tmp_path):
    """score is a Ray Data stage: its workers read and write file:// URIs themselves."""
    from difffake_ray.pipeline.score import run_score
    from tests.tables import read_scores

    base = f"file://{tmp_path}"
    cfg = fast_config()
    cfg.fit.min_frame_gap = cfg.score.min_frame_gap = 1
    table = toy_embeddings_table()
    for i, vids in enumerate((["v00", "v01", "v02", "v03", "v04", "v05"], ["v06", "v07", "v08", "v09", "v10", "v11"])):
        part = table.filter(pa.compute.is_in(table["video_id"], pa.array(vids)))
        storage.write_parquet_atomic(part, storage.join(base, "emb", f"part-{i}.parquet"))
    run_fit(storage.join(base, "emb"), storage.join(base, "adm"), cfg)
    run_score(storage.join(base, "emb"), storage.join(base, "scores"), storage.join(base, "adm"), cfg, progress=False)
    scores = read_scores(storage.join(base, "scores"))
    assert sorted(scores["video_id"].to_pylist()) == [f"v{i:02d}" for i in range(12)]
    assert os.path.isdir(tmp_path / "scores" / "dataset=toy")


@pytest.fixture(scope="module")
def s3_server():
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                                          "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_DEFAULT_REGION="us-east-1")
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("difffake-bucket")
    yield "s3://difffake-bucket"
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_s3_with_a_local_stand_in(s3_server):
    metrics = fit_and_evaluate_on(f"{s3_server}/run1")
    assert metrics["overall"]["auc"] > 0.9
    files = storage.list_data_files(f"{s3_server}/run1/scores")
    assert files == [f"{s3_server}/run1/scores/dataset=toy/part-0.parquet"]


def test_a_tilde_in_a_path_is_the_home_folder_everywhere(tmp_path, monkeypatch):
    import os

    from difffake_ray import storage

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    storage.write_text_atomic("~/out/a.txt", "x")  # fsspec alone would write ./~/out/a.txt
    assert (tmp_path / "out" / "a.txt").read_text() == "x" and not (tmp_path / "~").exists()
    assert storage.absolute("~/out") == str(tmp_path / "out") and storage.exists("~/out/a.txt")
    assert storage.list_data_files("~/out", ".txt") == [os.path.join(str(tmp_path), "out", "a.txt")]
