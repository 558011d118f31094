import json

import numpy as np
import pyarrow as pa
import pytest

from difffake_ray.adm.combinations import combine_pairs
from difffake_ray.adm.models import create_anomaly_model
from difffake_ray.adm.pairs import draw_pairs, reference_pairs, sample_pairs
from difffake_ray.adm.persistence import ModelFileError, load_model, save_model
from difffake_ray.adm.scoring import score_videos

rng = np.random.default_rng(0)
A, B = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))


@pytest.mark.parametrize("name, formula", [
    ("abs", lambda a, b: np.abs(a - b)), ("sub", lambda a, b: a - b),
    ("sub2", lambda a, b: (a - b) ** 2), ("sub3", lambda a, b: (a - b) ** 3), ("single", lambda a, b: a)])
def test_combinations_match_their_formulas(name, formula):
    assert np.allclose(combine_pairs(name, A, B, l2_normalize=False), formula(A, B))
    normed = combine_pairs(name, A, B, l2_normalize=True)
    assert np.allclose(np.linalg.norm(normed, axis=1), 1.0)


def test_pairs_respect_the_gap_and_are_distinct():
    frames = np.arange(0, 40) * 3
    pairs = sample_pairs(frames, 30, min_gap=10, rng=np.random.default_rng(1))
    assert pairs.shape == (30, 2)
    assert (np.abs(frames[pairs[:, 0]] - frames[pairs[:, 1]]) >= 10).all()
    assert len({tuple(p) for p in pairs}) == 30
    assert sample_pairs(np.array([5]), 30, 1, np.random.default_rng(0)).shape == (0, 2)
    assert len(sample_pairs(np.array([0, 1, 2]), 30, 50, np.random.default_rng(0))) == 1  # relaxed gap


def test_reference_pairing_pairs_every_other_frame_with_its_pool_of_8():
    frames = np.arange(40) * 5
    pairs = draw_pairs(frames, 30, 5, np.random.default_rng(3), pairing="reference")
    pool = set(range(40)) - set(pairs[:, 0])  # the frames never paired as a first member
    assert len(pairs) == 32 and len(set(pairs[:, 0])) == 32  # every frame outside the pool, once
    assert len(pool) == 8 and set(pairs[:, 1]) <= pool  # each paired with a frame of the pool of 8
    assert len(reference_pairs(5, np.random.default_rng(0))) == 1  # a short track keeps one frame out of its pool
    assert reference_pairs(1, np.random.default_rng(0)).shape == (0, 2)
    with pytest.raises(ValueError, match="unknown pairing 'pool'"):
        draw_pairs(frames, 30, 5, np.random.default_rng(0), pairing="pool")


def test_reference_pairing_reaches_the_scores_through_the_config():
    from difffake_ray.config import load_config
    from difffake_ray.adm.scoring import track_pairs

    cfg = load_config(None, ["fit.pairing=reference", "score.pairing=reference"])
    assert cfg.fit.pairing == cfg.score.pairing == "reference"
    pairs = track_pairs(np.arange(16) * 3, 30, 5, 0, cfg.score.pairing)
    assert len(pairs) == 8 and len(set(pairs[:, 1])) <= 8


@pytest.fixture(scope="module")
def fitted_gmm():
    X = np.concatenate([rng.normal(0, 1, (300, 16)), rng.normal(3, 0.5, (200, 16))])
    return create_anomaly_model("gmm", n_components=3, seed=0).fit(X), X


def test_vectorised_loglik_equals_sklearn(fitted_gmm):
    model, X = fitted_gmm
    ours = model.score_samples(X)
    ref = model.sklearn_.score_samples(X)
    assert np.allclose(ours, ref, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gmm", "ocsvm", "autoencoder"])
def test_save_load_round_trip_gives_identical_scores(tmp_path, kind):
    X = rng.normal(size=(120, 8))
    model = create_anomaly_model(kind, seed=0, **({"epochs": 3} if kind == "autoencoder" else {})).fit(X)
    save_model(model, str(tmp_path), {"anomaly_model": kind, "combination": "sub2", "l2_normalize": True,
                                  "embedding_dim": 8})
    back, meta = load_model(str(tmp_path))
    assert meta["combination"] == "sub2"
    assert np.array_equal(back.score_samples(X), model.score_samples(X))
    # every array loads with pickle refused: an object array (pickled) would raise here
    with np.load(tmp_path / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays and all(a.dtype != object for a in arrays.values())


def test_fast_scorer_matches_the_float64_reference_and_dense_fallback(fitted_gmm):
    from difffake_ray.adm.models import FastGaussianScorer, gaussian_log_likelihood

    model, X = fitted_gmm
    ref = gaussian_log_likelihood(X, model.weights_, model.means_, model.precisions_cholesky_)
    fast = FastGaussianScorer(model.weights_, model.means_, model.precisions_cholesky_, chunk=7)
    assert fast.triangular
    assert np.allclose(fast(X), ref, rtol=1e-5)
    # a non-triangular factor (not scikit-learn's) takes the dense product
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    rotated = np.stack([p @ q for p in model.precisions_cholesky_])
    dense = FastGaussianScorer(model.weights_, model.means_ @ np.eye(16), rotated)
    assert not dense.triangular
    assert np.allclose(dense(X), gaussian_log_likelihood(X, model.weights_, model.means_, rotated), rtol=1e-5)


def test_torch_scorer_matches_the_reference(fitted_gmm):
    """The GPU path, run here on CPU torch."""
    from difffake_ray.adm.models import TorchGaussianScorer, gaussian_log_likelihood

    model, X = fitted_gmm
    ref = gaussian_log_likelihood(X, model.weights_, model.means_, model.precisions_cholesky_)
    ours = TorchGaussianScorer(model.weights_, model.means_, model.precisions_cholesky_, device="cpu", chunk=64)(X)
    assert np.allclose(ours, ref, rtol=1e-5)


def test_a_model_file_that_does_not_fit_fails_at_load(tmp_path):
    from difffake_ray.adm.persistence import ModelFileError

    model = create_anomaly_model("gmm", n_components=2, seed=0).fit(rng.normal(size=(100, 4)))
    save_model(model, str(tmp_path / "a"), {"anomaly_model": "gmm", "combination": "sub9", "l2_normalize": True, "embedding_dim": 4})
    with pytest.raises(ModelFileError, match="unknown combination 'sub9'"):
        load_model(str(tmp_path / "a"))
    save_model(model, str(tmp_path / "b"), {"anomaly_model": "gmm", "combination": "sub2", "l2_normalize": True, "embedding_dim": 16})
    with pytest.raises(ModelFileError, match="dim 16"):
        load_model(str(tmp_path / "b"))


def _emb_rows(video, n_frames, dim=16, status="ok", label="real"):
    import zlib

    r = np.random.default_rng(zlib.crc32(video.encode()))  # stable across processes, unlike hash()
    return [dict(video_id=video, uri="u", label=label, dataset="d", method="m", split="test", video_status=status,
                 status="ok" if status == "ok" else status, error=None if status == "ok" else "bad",
                 frame_index=i * 3 if status == "ok" else None,
                 embedding=r.normal(size=dim).tolist() if status == "ok" else None)
            for i in range(n_frames if status == "ok" else 1)]


def _table(rows, dim=16):
    from difffake_ray import schema

    return pa.Table.from_pylist(rows, schema=schema.embeddings_schema(dim))


def test_video_score_is_mean_of_pair_scores_and_statuses(fitted_gmm):
    model = create_anomaly_model("gmm", seed=0).fit(rng.normal(size=(400, 16)) ** 2)
    meta = {"combination": "sub2", "l2_normalize": False, "embedding_dim": 16}
    rows = _emb_rows("v1", 12) + _emb_rows("v2", 1) + _emb_rows("v3", 0, status="unreadable")
    out = {r["video_id"]: r for r in score_videos(_table(rows), model, meta, n_pairs=30, min_gap=3, seed=0)}
    assert set(out) == {"v1", "v2", "v3"}
    assert out["v2"]["status"] == "too_few_faces" and out["v2"]["score"] is None
    assert out["v3"]["status"] == "unreadable" and out["v3"]["score"] is None
    v1 = out["v1"]
    assert v1["status"] == "ok" and v1["n_faces"] == 12 and v1["n_pairs"] == 30
    # recompute: the same pairs (seeded by the frame numbers) and their mean log-likelihood
    from difffake_ray.adm.scoring import track_pairs

    emb = np.array([r["embedding"] for r in rows if r["video_id"] == "v1"])
    frames = [r["frame_index"] for r in rows if r["video_id"] == "v1"]
    p = track_pairs(frames, 30, 3, 0)
    s = model.score_samples(combine_pairs("sub2", emb[p[:, 0]], emb[p[:, 1]], False))
    assert v1["score"] == pytest.approx(s.mean()) and v1["min_pair_score"] == pytest.approx(s.min())
    again = score_videos(_table(rows), model, meta, 30, 3, 0)
    assert [r["score"] for r in again] == [r["score"] for r in out.values()]


def test_wrong_embedding_dimension_is_a_status():
    model = create_anomaly_model("gmm", seed=0).fit(rng.normal(size=(100, 16)))
    out = score_videos(_table(_emb_rows("v", 5, dim=8), dim=8), model, {"combination": "sub2", "l2_normalize": True, "embedding_dim": 16}, 30, 1, 0)
    assert out[0]["status"] == "error" and "dim 8" in out[0]["error"]


def _toy_embeddings(tmp_path, dim=8, n_videos=12):
    import pyarrow.parquet as pq

    from tests.conftest import toy_embeddings_table

    emb = tmp_path / "emb"
    emb.mkdir()
    table = toy_embeddings_table(n_videos=n_videos, dim=dim)
    pq.write_table(table, emb / "part-0.parquet")
    return str(emb), table


def test_small_data_fit_chooses_reg_covar_on_held_out_real_videos_and_records_it(tmp_path, capsys):
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.config import load_config
    from difffake_ray.runtime import FITTED_VIDEOS, read_seen_videos

    emb, table = _toy_embeddings(tmp_path)
    cfg = load_config(None, ["fit.min_frame_gap=1", "fit.n_components=1", "fit.min_pairs_per_dim=1000",
                             "fit.reg_covar_grid=[1.0e-6,1.0e-3,1.0e-1]", "fit.reg_covar_folds=2"])
    meta = run_fit(emb, str(tmp_path / "adm"), cfg)
    small = meta["small_data"]
    assert small["remedy"] == "select_reg_covar" and small["reg_covar"] in (1e-6, 1e-3, 1e-1)
    sel = small["selection"]
    assert sel["chosen"] == sel["grid"][int(np.argmax(sel["held_out_loglik"]))] and sel["folds"] == 2
    out = capsys.readouterr().out
    assert "too few for a full covariance" in out
    assert sel["largest_of_grid"] == (sel["chosen"] == 1e-1) and ("the grid's largest" in out) == sel["largest_of_grid"]
    back, saved = load_model(str(tmp_path / "adm"))
    assert saved["small_data"]["reg_covar"] == small["reg_covar"] and back.reg_covar == small["reg_covar"]
    width = len(table.column("embedding")[0])  # model.json names the embeddings' width and the pairs' apart
    assert saved["embedding_dim"] == width and saved["pair_feature_dim"] == width
    train_reals = {r["video_id"] for r in table.to_pylist() if r["label"] == "real" and r["split"] == "train"}
    assert read_seen_videos(str(tmp_path / "adm"), FITTED_VIDEOS) == train_reals

    # the paper's setting stays available, and is what plenty of data gets
    paper = run_fit(emb, str(tmp_path / "adm2"), load_config(None, ["fit.min_frame_gap=1", "fit.n_components=1",
                                                                    "fit.small_data_remedy=none"]))
    assert paper["small_data"]["remedy"] == "none" and paper["small_data"]["reg_covar"] == 1e-6


def test_evaluate_leaves_out_the_videos_the_model_was_fitted_on(tmp_path):
    import pyarrow as pa

    from difffake_ray import schema, storage
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.config import load_config
    from difffake_ray.pipeline.evaluate import run_evaluate
    from difffake_ray.runtime import write_run_record

    emb, table = _toy_embeddings(tmp_path)
    cfg = load_config(None, ["fit.min_frame_gap=1", "fit.n_components=1", "score.min_frame_gap=1"])
    adm, scores = str(tmp_path / "adm"), str(tmp_path / "scores")
    meta = run_fit(emb, adm, cfg)
    model, meta = load_model(adm)
    rows = score_videos(table, model, meta, 30, 1, 0)
    storage.write_parquet_atomic(pa.Table.from_pylist(rows, schema=schema.SCORES_SCHEMA),
                                 storage.join(scores, "part-0.parquet"))
    write_run_record(scores, "score", cfg, inputs={"embeddings": emb, "model": adm}, counts={}, started=0)

    honest = run_evaluate(scores, str(tmp_path / "r1"), cfg)
    fitted = meta["n_fitted_videos"]
    assert fitted > 0 and honest["left_out_seen"]["fitted"] == fitted
    assert honest["videos"] == len(rows) - fitted
    assert honest["overall"]["n_real"] == sum(r["label"] == "real" for r in rows) - fitted
    everything = run_evaluate(scores, str(tmp_path / "r2"), load_config(None, ["evaluate.exclude_seen=false"]))
    assert everything["videos"] == len(rows) and everything["left_out_seen"]["fitted"] == 0
    for key in ("auc", "ap", "eer", "youden_binarised_auc"):
        assert 0.0 <= honest["overall"][key] <= 1.0


def test_detection_metrics_on_known_scores():
    from difffake_ray.metrics import video_auc

    labels = ["real"] * 4 + ["fake"] * 4
    perfect = video_auc(labels, np.array([4.0, 3, 2, 1, -1, -2, -3, -4]))  # higher = more real
    assert perfect["auc"] == 1.0 and perfect["ap"] == 1.0 and perfect["eer"] == 0.0
    inverted = video_auc(labels, np.array([-4.0, -3, -2, -1, 1, 2, 3, 4]))
    assert inverted["auc"] == 0.0 and inverted["eer"] == 1.0
    one_swap = video_auc(labels, np.array([4.0, 3, 2, -1.5, 1, -2, -3, -4]))
    assert one_swap["auc"] == pytest.approx(15 / 16) and one_swap["eer"] == pytest.approx(0.25)
    lo, hi = one_swap["auc_ci95"]
    assert lo < 15 / 16 < hi <= 1.0 and perfect["auc_ci95"] == [1.0, 1.0]


def test_auc_standard_error_matches_a_bootstrap():
    from sklearn.metrics import roc_auc_score

    from difffake_ray.metrics import auc_delong

    rng = np.random.default_rng(0)
    fake, real = rng.normal(0.8, 1, 30), np.round(rng.normal(0, 1, 60), 1)  # ties among the reals
    auc, se = auc_delong(fake, real)
    y = np.r_[np.ones(30), np.zeros(60)]
    assert auc == pytest.approx(roc_auc_score(y, np.r_[fake, real]))
    boot = [roc_auc_score(y, np.r_[rng.choice(fake, 30), rng.choice(real, 60)]) for _ in range(2000)]
    assert se == pytest.approx(np.std(boot), rel=0.15)  # both estimate the same sampling spread


def test_reg_covar_selection_says_when_the_grid_may_be_too_small():
    """Few points in many dimensions: the held-out likelihood rises with the regularisation, so the
    grid's largest value wins and the selection says so; with a larger value offered it does not."""
    from sklearn.mixture import GaussianMixture

    from difffake_ray.adm.selection import select_reg_covar

    rng = np.random.default_rng(0)
    X, groups = rng.normal(size=(40, 30)), np.repeat(np.arange(8), 5)

    def make(reg):
        return GaussianMixture(1, covariance_type="full", reg_covar=reg, random_state=0)

    small = select_reg_covar(X, groups, [1e-6, 1e-4], 2, make)
    assert small["chosen"] == 1e-4 and small["largest_of_grid"]
    wide = select_reg_covar(X, groups, [1e-6, 1e-4, 1.0, 1e4], 2, make)
    assert wide["chosen"] == 1.0 and not wide["largest_of_grid"]


def _regional_pairs(n_videos, n_pairs, regions, width, odd_region=None, seed=0):
    """sub2-like pair features of real videos; with ``odd_region``, that region's changes are 3x
    larger in every pair (a local manipulation) and the other regions' are the same as a real's."""
    r = np.random.default_rng(seed)
    X, groups = [], []
    for v in range(n_videos):
        d = r.normal(size=(n_pairs, regions, width)) * r.uniform(0.8, 1.2, size=(1, regions, width))
        if odd_region is not None:
            d[:, odd_region] *= 3.0
        X.append((d * d).reshape(n_pairs, -1))
        groups.append(np.full(n_pairs, f"{seed}-{v}"))
    return np.concatenate(X), np.concatenate(groups)


def test_regional_gmm_flags_a_change_confined_to_one_region():
    """A GMM per region, standardised on held-out real videos: videos whose change sits in one
    region score below every held-out real video, and that region is their lowest."""
    from difffake_ray.adm.regional import RegionalGmmAnomalyModel

    regions, width, n_pairs = 6, 4, 20
    X, groups = _regional_pairs(16, n_pairs, regions, width)
    model = create_anomaly_model("regional_gmm", n_regions=regions, n_components=1,
                                 reg_covar_grid=[0.1, 1.0], folds=3).fit(X, groups)
    assert isinstance(model, RegionalGmmAnomalyModel) and len(model.selection_) == regions
    assert all(s["reg_covar"] in (0.1, 1.0) for s in model.selection_)
    reals, _ = _regional_pairs(8, n_pairs, regions, width, seed=1)
    fakes, _ = _regional_pairs(8, n_pairs, regions, width, odd_region=2, seed=2)
    real_scores = model.video_pair_scores(reals, [n_pairs] * 8).reshape(8, n_pairs).mean(axis=1)
    fake_scores = model.video_pair_scores(fakes, [n_pairs] * 8).reshape(8, n_pairs).mean(axis=1)
    assert fake_scores.max() < real_scores.min()
    # held-out real videos sit near the training reals' standardisation: z-scores of a few units
    assert -6 < real_scores.min() and real_scores.max() < 3
    ll = model.block_log_likelihoods(fakes)
    per_video = ll.reshape(8, n_pairs, regions).mean(axis=1)
    assert (np.argmin((per_video - model.loc_) / model.spread_, axis=1) == 2).all()
    # a pair's score is its least likely region's z-score
    assert np.allclose(model.score_samples(fakes), ((ll - model.loc_) / model.spread_).min(axis=1))
    with pytest.raises(ValueError, match="do not split into 6 equal regions"):
        model.video_pair_scores(fakes[:, :-1], [len(fakes)])


def test_regional_gmm_round_trips_without_pickle_and_scores_videos_through_score_videos(tmp_path):
    regions, width = 3, 2
    X, groups = _regional_pairs(9, 15, regions, width)
    model = create_anomaly_model("regional_gmm", n_regions=regions, n_components=2, folds=3).fit(X, groups)
    save_model(model, str(tmp_path), {"anomaly_model": "regional_gmm", "combination": "sub2",
                                      "l2_normalize": False, "embedding_dim": regions * width})
    back, _ = load_model(str(tmp_path))
    assert np.array_equal(back.score_samples(X), model.score_samples(X))
    with np.load(tmp_path / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        # a file of the first regional models (one block per region, before the levels) still loads
        old = {k.replace("_0", ""): z[k] for k in z.files}
    np.savez(tmp_path / "model.npz", **old)
    assert np.array_equal(load_model(str(tmp_path))[0].score_samples(X), model.score_samples(X))
    bad = tmp_path / "bad"
    save_model(back, str(bad), {"anomaly_model": "regional_gmm", "combination": "sub2", "l2_normalize": False,
                                "embedding_dim": regions * width + 1})
    with pytest.raises(ModelFileError, match="bad: dim 7 does not split into 3 regions"):
        load_model(str(bad))
    # score_videos takes a video's score from the model: the lowest block z-score of pair means
    meta = {"combination": "sub2", "l2_normalize": False, "embedding_dim": regions * width}
    rows = _emb_rows("v1", 10, dim=regions * width)
    row = score_videos(_table(rows, dim=regions * width), back, meta, n_pairs=30, min_gap=2, seed=0)[0]
    from difffake_ray.adm.scoring import track_pairs

    emb = np.array([r["embedding"] for r in rows])
    p = track_pairs([r["frame_index"] for r in rows], 30, 2, 0)
    pairs = combine_pairs("sub2", emb[p[:, 0]], emb[p[:, 1]], False)
    from difffake_ray.adm.regional import mean_spread

    ll = back.block_log_likelihoods(pairs).mean(axis=0)
    spread = mean_spread(back.between_var_, back.within_var_, len(p))  # of a mean over this many pairs
    z = (ll - back.loc_) / spread
    assert row["status"] == "ok" and row["score"] == pytest.approx(z.min())
    # its pairs are read in that least likely block: their mean is the video's score
    decisive = (back.block_log_likelihoods(pairs)[:, np.argmin(z)] - back.loc_[np.argmin(z)]) / spread[np.argmin(z)]
    assert row["min_pair_score"] == pytest.approx(decisive.min())


def test_fit_gives_a_regional_model_the_videos_and_the_embedding_regions(tmp_path, capsys):
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.config import load_config
    from difffake_ray.runtime import write_run_record

    emb, _ = _toy_embeddings(tmp_path, dim=8)
    cfg_overrides = ["fit.min_frame_gap=1", "fit.anomaly_model=regional_gmm", "fit.n_components=1",
                     "fit.l2_normalize=false", "fit.reg_covar_folds=2"]
    cfg = load_config(None, cfg_overrides)
    write_run_record(emb, "embed", cfg, inputs={}, counts={}, started=0.0,
                     extra={"backbone_meta": {"embedding": "regions", "regions": 4, "region_stages": [1, 1]}})
    # two stages per region, both before fit.texture_stages (3): one block per region
    meta = run_fit(emb, str(tmp_path / "adm"), cfg)
    assert meta["small_data"]["regions"] == 4 and len(meta["small_data"]["reg_covar"]) == 4
    assert "4 region(s) x 1 level(s) of 2 dimensions" in capsys.readouterr().out
    back, saved = load_model(str(tmp_path / "adm"))
    assert back.n_regions == 4 and "least likely block" in saved["score_direction"]
    # the first stage as texture: a texture and a semantic block per region
    cfg = load_config(None, cfg_overrides + ["fit.texture_stages=1"])
    meta = run_fit(emb, str(tmp_path / "adm2"), cfg)
    assert meta["small_data"]["level_widths"] == [1, 1] and len(meta["small_data"]["reg_covar"]) == 8
    assert "4 region(s) x 2 level(s) of 1 + 1 dimensions" in capsys.readouterr().out
    back, _ = load_model(str(tmp_path / "adm2"))
    assert back.region_stages == [1, 1] and len(back.blocks_) == 8


def test_regional_gmm_models_a_regions_texture_apart_from_its_semantics(tmp_path):
    """A change to a few early-stage (texture) columns of one region, under the natural spread of
    its many late-stage (semantic) columns: a block per level finds it, and that block is the
    video's decisive one; one block per region scores the same fakes less apart from the reals.
    The two-level model round-trips, and a file whose stage widths do not make a region is refused."""
    regions, stages, n_pairs = 3, [2, 12], 20
    width = sum(stages)

    def pairs(n_videos, seed, fake=False):
        X, groups = _regional_pairs(n_videos, n_pairs, regions, width, seed=seed)
        if fake:  # region 1's texture columns change 3x more than a real's
            X.reshape(-1, regions, width)[:, 1, :2] *= 9.0  # squared changes
        return X, groups

    X, groups = pairs(16, 0)
    reals, _ = pairs(8, 1)
    fakes, _ = pairs(8, 2, fake=True)

    def separation(model):
        r = model.video_pair_scores(reals, [n_pairs] * 8).reshape(8, n_pairs).mean(axis=1)
        f = model.video_pair_scores(fakes, [n_pairs] * 8).reshape(8, n_pairs).mean(axis=1)
        return r.min() - f.max()

    two = create_anomaly_model("regional_gmm", n_regions=regions, region_stages=stages, texture_stages=1,
                               n_components=1, reg_covar_grid=[0.1, 1.0], folds=3).fit(X, groups)
    one = create_anomaly_model("regional_gmm", n_regions=regions, region_stages=stages, texture_stages=0,
                               n_components=1, reg_covar_grid=[0.1, 1.0], folds=3).fit(X, groups)
    assert two.level_widths(width) == [2, 12] and len(two.blocks_) == 6
    assert one.level_widths(width) == [width] and len(one.blocks_) == 3
    gap_two, gap_one = separation(two), separation(one)
    assert gap_two > 0 and gap_two > gap_one
    per_video = two.block_log_likelihoods(fakes).reshape(8, n_pairs, 6).mean(axis=1)
    assert (np.argmin((per_video - two.loc_) / two.spread_, axis=1) == 2).all()  # region 1, texture
    meta = {"anomaly_model": "regional_gmm", "combination": "sub2", "l2_normalize": False,
            "embedding_dim": regions * width}
    save_model(two, str(tmp_path / "two"), meta)
    back, _ = load_model(str(tmp_path / "two"))
    assert np.array_equal(back.score_samples(fakes), two.score_samples(fakes))
    with np.load(tmp_path / "two" / "model.npz", allow_pickle=False) as z:
        assert z["means_0"].shape == (3, 1, 2) and z["means_1"].shape == (3, 1, 12)
    wrong = create_anomaly_model("regional_gmm", n_regions=regions, region_stages=[2, 11], texture_stages=1)
    with pytest.raises(ValueError, match=r"stage widths \[2, 11\] \(sum 13\) do not make a region of 14"):
        wrong.block_columns(regions * width)
    two.region_stages = [2, 11]
    save_model(two, str(tmp_path / "bad"), meta)
    with pytest.raises(ModelFileError, match="bad/model.json: stage widths"):
        load_model(str(tmp_path / "bad"))


def test_ocsvm_scale_gamma_keeps_scores_apart_in_many_dimensions():
    """gamma 1 on 2000 dimensions gave every row the same score; the scale rule does not."""
    X = rng.normal(size=(200, 2000)) ** 2
    model = create_anomaly_model("ocsvm").fit(X)
    assert isinstance(model.gamma_, float)
    inliers, outliers = model.score_samples(X[:50]), model.score_samples(X[:50] * 3)
    assert np.ptp(inliers) > 0 and outliers.max() < np.median(inliers)


def test_regional_scores_of_real_videos_do_not_depend_on_their_number_of_pairs():
    """Simulated real videos (each with its own offset, pairs scattered around it): a new real
    video's score, the lowest block z-score, has the same mean with 4 pairs (face dropouts) as with
    30. Standardised with the training videos' spread alone, 4-pair videos scored far lower."""
    from difffake_ray.adm.regional import RegionalGmmAnomalyModel

    gen = np.random.default_rng(3)
    regions, width = 4, 6

    def videos(n_videos, n_pairs):
        offsets = gen.normal(size=(n_videos, 1, regions * width)) * 0.3  # between videos
        pairs = np.abs(offsets + gen.normal(size=(n_videos, n_pairs, regions * width)))  # within a video
        return pairs.reshape(-1, regions * width), np.repeat(np.arange(n_videos), n_pairs)

    X, groups = videos(60, 30)
    model = RegionalGmmAnomalyModel(n_regions=regions, n_components=1, folds=3, seed=0).fit(X, groups)

    def mean_video_score(n_pairs, corrected=True):
        Xn, g = videos(300, n_pairs)
        model.spread_by_pairs = corrected  # fit.spread_by_pairs
        return model.video_pair_scores(Xn, [n_pairs] * 300).reshape(300, n_pairs).mean(axis=1).mean()

    few, many = mean_video_score(4), mean_video_score(30)
    assert abs(few - many) < 0.25, (few, many)
    assert mean_video_score(4, corrected=False) < few - 0.5  # what the training spread alone gave


@pytest.mark.parametrize("kind", ["gmm", "ocsvm", "autoencoder", "regional_gmm"])
def test_every_anomaly_model_keeps_the_estimator_contract(kind, tmp_path):
    """Explicit constructor parameters (no **kwargs), get_params that rebuilds the model,
    fit(X, groups=None), and a model file naming a parameter the model does not take is refused."""
    import inspect

    from difffake_ray.adm.models import ANOMALY_MODELS, AnomalyModel

    cls = ANOMALY_MODELS.get(kind)
    assert issubclass(cls, AnomalyModel)
    kinds = [p.kind for p in inspect.signature(cls.__init__).parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    model = cls()
    assert cls(**model.get_params()).get_params() == model.get_params() and model.get_params()
    fit = inspect.signature(cls.fit).parameters
    assert list(fit)[:3] == ["self", "X", "groups"] and fit["groups"].default is None
    with pytest.raises(TypeError):
        cls(no_such_parameter=1)
    if kind == "gmm":
        fitted = model.fit(rng.normal(size=(60, 4)))
        save_model(fitted, str(tmp_path), {"anomaly_model": kind, "combination": "sub2", "l2_normalize": True,
                                           "embedding_dim": 4})
        meta = json.loads((tmp_path / "model.json").read_text())
        (tmp_path / "model.json").write_text(json.dumps(dict(meta, params=dict(meta["params"], epochs=3))))
        with pytest.raises(ModelFileError, match="gmm takes no parameter epochs"):
            load_model(str(tmp_path))


def test_fit_settings_the_chosen_model_does_not_take_are_named_not_silently_dropped():
    from difffake_ray.adm.fit import unused_settings
    from difffake_ray.config import load_config

    assert unused_settings(load_config(None, ["fit.anomaly_model=regional_gmm"]).fit) == []
    cfg = load_config(None, ["fit.anomaly_model=regional_gmm", "fit.reg_covar=1.0e-3",
                             "fit.reg_covar_grid=[1.0e-3]"]).fit
    assert unused_settings(cfg) == ["reg_covar", "reg_covar_grid"]
    assert unused_settings(load_config(None, ["fit.texture_stages=2"]).fit) == ["texture_stages"]  # a gmm's
    assert unused_settings(load_config(None, ["fit.ocsvm_nu=0.05"]).fit) == ["ocsvm_nu"]


def test_the_ablation_models_take_their_own_settings_from_the_fit_section():
    from difffake_ray.adm.fit import fit_anomaly_model
    from difffake_ray.config import load_config

    X, owners = rng.normal(size=(80, 6)) ** 2, np.repeat(np.arange(8), 10)
    f = load_config(None, ["fit.anomaly_model=ocsvm", "fit.ocsvm_nu=0.05"]).fit
    assert fit_anomaly_model(X, owners, f, {}, log=lambda _: None)[0].nu == 0.05
    f = load_config(None, ["fit.anomaly_model=autoencoder", "fit.autoencoder_hidden=16", "fit.autoencoder_epochs=2",
                           "fit.autoencoder_bottleneck=4"]).fit
    model = fit_anomaly_model(X, owners, f, {}, log=lambda _: None)[0]
    assert (model.hidden, model.bottleneck, model.epochs) == (16, 4, 2)
