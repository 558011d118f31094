"""Video scores from face tracks: the pair draw depends on content, not names; the video takes its
most anomalous moving track; too little evidence or a still face is a status, not a verdict."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from difffake_ray import schema
from difffake_ray.adm.models import create_anomaly_model
from difffake_ray.adm.scoring import score_videos

DIM = 8
META = {"combination": "sub2", "l2_normalize": False, "embedding_dim": DIM}


@pytest.fixture(scope="module")
def model():
    """A GMM of small real changes: pair features of faces that jitter by 0.1 a dimension."""
    rng = np.random.default_rng(0)
    return create_anomaly_model("gmm", n_components=1, reg_covar=1e-3, seed=0).fit(
        (rng.normal(size=(2000, DIM)) * 0.1) ** 2)


def track_rows(video, track, n, step=0.1, motion=8.0, seed=0, label="real", first_frame=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=DIM)
    return [dict(video_id=video, uri=f"{video}.mp4", label=label, dataset="d", method="m", split="test",
                 video_status="ok", status="ok", error=None, frame_index=first_frame + 3 * i, track=track,
                 motion=None if i == 0 else motion, embedding=(base + rng.normal(size=DIM) * step).tolist())
            for i in range(n)]


def table(rows):
    return pa.Table.from_pylist(rows, schema=schema.embeddings_schema(DIM))


def score(model, rows, n_pairs=30, min_faces=6):
    return {r["video_id"]: r for r in score_videos(table(rows), model, META, n_pairs, 1, 0, min_faces=min_faces)}


def test_the_same_faces_under_another_name_get_the_same_score(model):
    rows = track_rows("clip.mp4", 0, 16, seed=3)
    renamed = [dict(r, video_id="holiday/renamed.mov", uri="renamed.mov") for r in rows]
    a, b = score(model, rows, n_pairs=5)["clip.mp4"], score(model, renamed, n_pairs=5)["holiday/renamed.mov"]
    assert a["n_pairs"] == 5 < 16 * 15 // 2  # a draw among many pairs: the seed decides which
    assert a["score"] == b["score"] and a["min_pair_score"] == b["min_pair_score"]


def test_a_still_background_face_neither_hides_a_fake_track_nor_counts(model):
    fake = track_rows("v", 0, 12, step=0.6, seed=1)  # a face that changes far more than real ones
    poster = track_rows("v", 1, 12, step=0.0, motion=0.0, seed=2)  # a poster: perfectly still
    alone = score(model, fake)["v"]
    both = score(model, poster + fake)["v"]  # the poster listed first and its score the most real
    assert both["status"] == "ok" and both["track"] == 0 and both["n_tracks"] == 1
    assert both["score"] == alone["score"]
    # two live faces: the video takes the more anomalous one
    real = track_rows("v", 2, 12, step=0.1, seed=4)
    two = score(model, real + fake)["v"]
    assert two["n_tracks"] == 2 and two["track"] == 0 and two["score"] == alone["score"]
    assert score(model, real)["v"]["score"] > alone["score"]


def test_too_few_faces_or_only_a_still_face_is_a_status_not_a_verdict(model):
    few = score(model, track_rows("few", 0, 4, seed=5))["few"]
    assert few["status"] == schema.LOW_EVIDENCE and few["score"] is not None and few["n_tracks"] == 0
    assert "4 usable faces" in few["error"] and "needs 6" in few["error"]
    still = score(model, track_rows("photo", 0, 12, step=0.0, motion=0.02, seed=6))["photo"]
    assert still["status"] == schema.STATIC and "still" in still["error"]
    one = score(model, track_rows("one", 0, 1, seed=7))["one"]
    assert one["status"] == schema.TOO_FEW_FACES and one["score"] is None
    # files written before tracks and motion: one track, never still
    old = table(track_rows("old", 0, 12, seed=8)).drop_columns(["track", "motion"])
    row = score_videos(old, model, META, 30, 1, 0, min_faces=6)[0]
    assert row["status"] == "ok" and row["track"] == 0
