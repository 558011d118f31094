import numpy as np

from difffake_ray.config import CorpusConfig
from difffake_ray.datasets.synthetic import plan_corpus, render_faceswap, render_planned, render_real
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
    assert {p["method"] for p in plan if p["label"] == "fake"} == {"faceswap", "flicker", "astronaut_flicker"}


def test_faces_are_detected_in_real_and_fake_videos_at_both_sizes():
    det = create_detector("haar")
    for render in (render_real, render_faceswap):
        for w, h in ((640, 360), (1280, 720)):
            frames = render(np.random.default_rng(11), w, h, 30)[::3]
            assert np.mean([largest_face(det.detect(f)) is not None for f in frames]) >= 0.8


def test_real_video_moves_and_fake_flickers():
    real = render_real(np.random.default_rng(3), 640, 360, 50)
    assert np.abs(real[0].astype(int) - real[49]).mean() > 1.0  # the head moved
