import numpy as np

from difffake_ray.config import CorpusConfig
from difffake_ray.datasets.synthetic import (FAKE_RENDERERS, identity_pool, plan_corpus, render_faceswap,
                                              render_planned, render_real)
from difffake_ray.faces.detectors import create_detector, largest_face


def test_same_seed_same_video():
    cfg = CorpusConfig(n_videos=4, include_astronaut=False)
    a, b = plan_corpus(cfg)[0], plan_corpus(cfg)[0]
    assert a == b
    fa, fb = render_planned(a, 25)[0][:3], render_planned(b, 25)[0][:3]
    assert all((x == y).all() for x, y in zip(fa, fb))


def test_plan_has_real_train_and_fake_test_and_astronaut():
    plan = plan_corpus(CorpusConfig(n_videos=8))
    labels = [p["label"] for p in plan]
    assert labels.count("real") == 5 and labels.count("fake") == 5  # 4 + 4 drawn, 1 + 1 astronaut
    assert {p["split"] for p in plan if p["label"] == "real" and not p.get("astronaut")} == {"train", "test"}
    assert {p["method"] for p in plan if p["label"] == "fake"} == {
        "faceswap", "inner_swap", "mouth_reenact", "eye_edit", "astronaut_flicker"}


def test_every_manipulation_kind_is_planned_and_identities_stay_in_their_split():
    cfg = CorpusConfig(n_videos=36, identities_per_split=3, include_astronaut=False)
    plan = plan_corpus(cfg)
    fakes = [p for p in plan if p["label"] == "fake"]
    assert {p["method"] for p in fakes} == set(FAKE_RENDERERS) and all(p["split"] == "test" for p in fakes)
    assert all(p["source_identity"] != p["identity"] for p in fakes)
    train_ids = [p["identity"] for p in plan if p["split"] == "train"]
    assert len(train_ids) > len(set(train_ids)) == 3  # several videos per person
    # the pools differ: a train identity is nobody in the test split
    train_pool, test_pool = identity_pool(0, "train", 3), identity_pool(0, "test", 3)
    assert not any(a == b for a in train_pool for b in test_pool)


def test_real_videos_vary_in_capture_and_fakes_carry_per_frame_artefacts():
    looks = [render_planned(p, 25)[1] for p in plan_corpus(CorpusConfig(n_videos=10, min_seconds=0.1,
                                                                          max_seconds=0.1))]
    assert len({lk.crf for lk in looks}) > 1 and len({lk.focus for lk in looks}) > 1
    pool = identity_pool(0, "test", 2)
    look = looks[0]
    for name, render in FAKE_RENDERERS.items():
        # the same person and camera, with and without a manipulation
        real = render_real(np.random.default_rng(4), 320, 240, 6, pool[0], look)
        fake = render(np.random.default_rng(4), 320, 240, 6, pool[0], look, pool[1])
        assert len(fake) == 6 and fake[0].shape == (240, 320, 3) and fake[0].dtype == np.uint8, name
        assert np.abs(fake[3].astype(int) - real[3]).mean() > 0.3, name  # the manipulation shows


def test_faces_are_detected_in_real_and_fake_videos_at_both_sizes():
    det = create_detector("haar")
    for render in (render_real, render_faceswap):
        for w, h in ((640, 360), (1280, 720)):
            frames = render(np.random.default_rng(11), w, h, 30)[::3]
            assert np.mean([largest_face(det.detect(f)) is not None for f in frames]) >= 0.8


def test_real_video_moves_and_fake_flickers():
    real = render_real(np.random.default_rng(3), 640, 360, 50)
    assert np.abs(real[0].astype(int) - real[49]).mean() > 1.0  # the head moved
