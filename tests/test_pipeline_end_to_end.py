"""embed -> fit -> score -> evaluate through local Ray, on the extracted synthetic corpus."""

import json
import os

import pytest

from difffake_ray import schema, storage
from difffake_ray.pipeline.fit import run_fit
from difffake_ray.config import load_config
from difffake_ray.pipeline.evaluate import run_evaluate
from difffake_ray.pipeline.embed import run_embed
from difffake_ray.pipeline.score import run_score
from tests.tables import read_scores
from difffake_ray.pipeline.train import run_train
from difffake_ray.runtime import FITTED_VIDEOS, TRAINED_VIDEOS, read_seen_videos

from .conftest import tiny_train_overrides

pytestmark = pytest.mark.ray


def test_embed_fit_score_evaluate(ray_local, faces, tmp_path):
    cfg = load_config(None, tiny_train_overrides(1) + ["fit.min_frame_gap=1", "score.min_frame_gap=1",
                                                       "fit.n_components=2"])
    run = str(tmp_path / "run")
    run_train(faces, run, cfg)
    emb, adm, scores, report = (str(tmp_path / n) for n in ("emb", "adm", "scores", "report"))
    run_embed(faces, emb, os.path.join(run, "best.pt"), cfg, progress=False)
    e = storage.read_parquet_dir(emb)
    ok = [r for r in e.select(["status", "embedding"]).to_pylist() if r["status"] == "ok"]
    assert ok and all(len(r["embedding"]) == 256 for r in ok)

    run_fit(emb, adm, cfg)
    run_score(emb, scores, adm, cfg, progress=False)
    table = read_scores(scores)
    assert table.schema.equals(schema.SCORES_SCHEMA)
    videos = {r["video_id"]: r for r in table.to_pylist()}
    faces_t = storage.read_parquet_dir(faces, columns=["video_id", "status"]).to_pylist()
    n_faces = {}
    for r in faces_t:
        n_faces[r["video_id"]] = n_faces.get(r["video_id"], 0) + (r["status"] == "ok")
    assert set(videos) == set(n_faces)  # every input video has a row
    for vid, n in n_faces.items():
        if n >= 2:
            assert videos[vid]["score"] is not None and videos[vid]["status"] == "ok"
        else:
            assert videos[vid]["score"] is None and videos[vid]["status"] != "ok"
    assert any(p.startswith("dataset=") for p in os.listdir(scores))  # partitioned by dataset

    # the same run twice gives an identical table
    run_score(emb, str(tmp_path / "scores2"), adm, cfg, progress=False)
    key = lambda t: sorted((r["video_id"], r["score"]) for r in t.to_pylist())  # noqa: E731
    assert key(read_scores(str(tmp_path / "scores2"))) == key(table)

    # the batch path reads every column scoring needs: a video of two face tracks scores as
    # score_videos scores it (the track and motion columns reach the scorer)
    import pyarrow as pa
    import pyarrow.compute as pc

    from difffake_ray.adm.persistence import load_model
    from difffake_ray.adm.scoring import score_videos

    two = sorted(videos)[0]
    in_two = pc.and_(pc.equal(e["video_id"], two), pc.equal(pc.bit_wise_and(e["frame_index"], 1), 0))
    tracks = pc.if_else(in_two, pa.scalar(1, pa.int16()), e["track"])
    split_emb = str(tmp_path / "emb-two-tracks")
    storage.write_parquet_atomic(e.set_column(e.schema.get_field_index("track"), "track", tracks),
                                 os.path.join(split_emb, "part-0.parquet"))
    run_score(split_emb, str(tmp_path / "scores-two"), adm, cfg, progress=False)
    model, meta = load_model(adm)
    s = cfg.score
    direct = {r["video_id"]: r for r in score_videos(storage.read_parquet_dir(split_emb), model, meta,
                                                     s.pairs_per_video, s.min_frame_gap, s.seed,
                                                     min_faces=s.min_faces)}
    batch = {r["video_id"]: r for r in read_scores(str(tmp_path / "scores-two")).to_pylist()}
    assert {k: (r["status"], r["score"], r["track"], r["n_tracks"]) for k, r in batch.items()} == \
        {k: (r["status"], r["score"], r["track"], r["n_tracks"]) for k, r in direct.items()}
    assert batch[two]["n_faces"] < videos[two]["n_faces"]  # its faces were split between two tracks

    metrics = run_evaluate(scores, report, cfg)
    assert 0.0 <= metrics["overall"]["auc"] <= 1.0
    assert "synthetic/faceswap" in metrics["per_method"]
    for f in ("metrics.json", "roc.png", "score_hist.png"):
        assert os.path.getsize(os.path.join(report, f)) > 1000 or f == "metrics.json"
    # the videos the GMM was fitted on and the backbone trained on are left out, and counted
    left_out = metrics["left_out_seen"]
    fitted = read_seen_videos(adm, FITTED_VIDEOS)
    trained = read_seen_videos(run, TRAINED_VIDEOS)
    assert fitted and trained and fitted <= trained  # fit and train both use the real training split
    assert left_out["fitted"] == len(fitted) and left_out["trained"] == len(trained - fitted)
    assert json.load(open(os.path.join(report, "metrics.json")))["videos"] == len(videos) - len(trained)
    assert metrics["overall"]["n_real"] + metrics["overall"]["n_fake"] == metrics["scored"]
    everything = run_evaluate(scores, str(tmp_path / "all"), load_config(None, ["evaluate.exclude_seen=false"]))
    assert everything["videos"] == len(videos) and everything["left_out_seen"]["fitted"] == 0


def test_the_real_footage_config_builds_a_bundle_without_fine_tuning(ray_local, corpus, tmp_path):
    """configs/real.yaml through run-all: train.epochs 0 exports ImageNet's backbone as it is (no
    Ray Train run), the paper's head and crop, one GMM on L2-normalised pairs, and a bundle that
    names the footage it was calibrated on."""
    from difffake_ray.backbone import load_embedder_file
    from difffake_ray.pipeline.run_all import run_all

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    w = tmp_path / "w"
    cfg = load_config(os.path.join(root, "configs", "real.yaml"),
                      [f"corpus_uri={corpus}", f"workdir={w}", "extract.n_frames=8", "fit.min_frame_gap=1",
                       "score.min_frame_gap=1", "score.min_faces=2", "fit.reg_covar_folds=2"])
    assert cfg.train.epochs == 0 and cfg.fit.anomaly_model == "gmm" and cfg.fit.l2_normalize
    metrics = run_all(cfg)
    assert metrics["overall"]["n_real"] + metrics["overall"]["n_fake"] > 0
    assert not (w / "run" / "ray_train").exists()  # nothing was trained
    meta = load_embedder_file(str(w / "run" / "best.pt"))["meta"]
    assert meta["epoch"] is None and meta["embedding"] == "pooled" and meta["input"]["crop_pct"] == 1.0
    bundle = json.loads((w / "detector" / "bundle.json").read_text())
    assert bundle["calibration"]["calibrated_on"]["synthetic"] is True  # the corpus here is the generator's
