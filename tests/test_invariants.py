"""The accounting identity, stage by stage, on hostile files mixed into a normal corpus:

    input videos = ok + each failure status

Every manifest video appears in every stage's output exactly once (extract/embed: its rows in one
part file; score: one row), every failure names its file and cause, no stage crashes on a
per-video fault, and ``verify`` agrees.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from difffake_ray import schema, storage
from tests.hostile import CASES, MISSING_CASE, make_hostile_corpus
from difffake_ray.datasets.manifest import manifest_table, write_manifest
from difffake_ray.verify import verify_output
from tests.conftest import fast_config

pytestmark = pytest.mark.ray

KNOWN_STATUSES = {schema.VIDEO_OK, schema.MISSING, schema.UNREADABLE, schema.NO_FRAMES, schema.NO_FACE,
                  schema.TOO_FEW_FACES, schema.LOW_EVIDENCE, schema.STATIC, schema.EMBED_ERROR, schema.ERROR}


@pytest.fixture(scope="module")
def mixed_manifest(corpus, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mixed"))
    normal = pq.read_table(os.path.join(corpus, "manifest.parquet")).to_pylist()
    rows = [dict(r, uri=os.path.join(corpus, r["uri"])) for r in normal] + make_hostile_corpus(root)
    path = os.path.join(root, "manifest.parquet")
    write_manifest(manifest_table(rows), path)
    return path, {r["video_id"] for r in rows}


def video_level(uri: str, status_column: str) -> dict:
    t = storage.read_parquet_dir(uri, columns=["video_id", status_column, "error"])
    out = {}
    for r in t.to_pylist():
        out.setdefault(r["video_id"], (r[status_column], r["error"]))
    return out


def assert_identity(stage_out: str, videos: set, status_column: str) -> dict:
    record = storage.read_json(os.path.join(stage_out, "_run.json"))
    counts = record["counts"]["videos"]
    assert sum(counts.values()) == len(videos), counts  # input videos = ok + each failure status
    assert set(counts) <= KNOWN_STATUSES
    level = video_level(stage_out, status_column)
    assert set(level) == videos
    report = verify_output(stage_out)
    assert report["ok"], report["problems"]
    return level


def test_accounting_identity_through_every_stage(ray_local, mixed_manifest, tmp_path):
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.backbone import create_backbone, export_embedder
    from difffake_ray.pipeline.evaluate import run_evaluate
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray.pipeline.score import run_score
    from difffake_ray.preprocess import InputSpec

    manifest, videos = mixed_manifest
    assert len(videos) == 8 + len(CASES) + 1
    cfg = fast_config()
    cfg.fit.min_frame_gap = cfg.score.min_frame_gap = 1
    faces, emb, adm, scores = (str(tmp_path / d) for d in ("faces", "emb", "adm", "scores"))

    run_extract(manifest, faces, cfg, progress=False)
    extracted = assert_identity(faces, videos, "video_status")
    for vid, (status, error) in extracted.items():
        if vid.startswith("hostile/") and status != schema.VIDEO_OK:
            name = vid.split("/", 1)[1]
            assert name in error, (vid, error)  # the error names the file ...
            assert len(error) > len(name) + 10  # ... and the cause
    assert extracted[f"hostile/{MISSING_CASE}"][0] == schema.MISSING
    for case in ("zero_bytes.mp4", "random_bytes.mp4", "truncated_10.mp4"):
        assert extracted[f"hostile/{case}"][0] == schema.UNREADABLE, (case, extracted[f"hostile/{case}"])
    for case in ("wrong_extension.avi", "vidéo réelle 名前 with spaces.mp4", "variable_frame_rate.mp4",
                 "rotated_90.mp4", "faststart_truncated_50.mp4"):
        assert extracted[f"hostile/{case}"][0] == schema.VIDEO_OK, (case, extracted[f"hostile/{case}"])

    # a corrupt crop blob in one good video: that frame becomes embed_error, the video still scores
    part = next(f for f in storage.list_data_files(faces)
                if "hostile/wrong_extension.avi" in pq.read_table(f, columns=["video_id"])["video_id"].to_pylist())
    t = pq.read_table(part)
    crops = t["crop"].to_pylist()
    first = next(i for i, r in enumerate(t.select(["video_id", "status"]).to_pylist())
                 if r["video_id"] == "hostile/wrong_extension.avi" and r["status"] == "ok")
    crops[first] = b"\x89PNG\r\n\x1a\n garbage"
    storage.write_parquet_atomic(t.set_column(t.schema.get_field_index("crop"), "crop",
                                              pa.array(crops, pa.binary())), part)

    backbone = tmp_path / "tiny.pt"
    tiny = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(tiny, str(backbone), "test_efficientnet", InputSpec.from_model(tiny, 64))
    run_embed(faces, emb, str(backbone), cfg, progress=False)
    embedded = assert_identity(emb, videos, "video_status")
    frames = storage.read_parquet_dir(emb, columns=["video_id", "frame_index", "status", "error"]).to_pylist()
    bad = [r for r in frames if r["status"] == schema.EMBED_ERROR]
    assert len(bad) == 1 and "corrupt image blob" in bad[0]["error"] and "wrong_extension" in bad[0]["error"]
    assert {k: v[0] for k, v in embedded.items()} == {k: v[0] for k, v in extracted.items()}

    run_fit(emb, adm, cfg)
    run_score(emb, scores, adm, cfg, progress=False)
    scored = assert_identity(scores, videos, "status")
    table = storage.read_parquet_dir(scores).to_pylist()
    for r in table:
        # a verdict's score, or one shown with too little evidence for a verdict
        assert (r["score"] is not None) == (r["status"] in (schema.VIDEO_OK, schema.LOW_EVIDENCE, schema.STATIC))
        if r["status"] != schema.VIDEO_OK:
            assert r["error"], r
    assert scored["hostile/wrong_extension.avi"][0] == schema.VIDEO_OK  # lost one frame, still pairs
    assert scored["hostile/one_frame.mp4"][0] in (schema.TOO_FEW_FACES, schema.NO_FACE)

    metrics = run_evaluate(scores, str(tmp_path / "report"), cfg)
    fitted = metrics["left_out_seen"]["fitted"]  # the real training videos the model was fitted on
    assert fitted > 0 and metrics["videos"] + fitted == len(videos)
    assert metrics["scored"] + sum(metrics["not_scored_by_status"].values()) == len(videos) - fitted
    print({vid.split('/', 1)[1]: s for vid, (s, _) in sorted(scored.items()) if vid.startswith("hostile/")})


def test_malformed_manifests_fail_before_any_work(tmp_path):
    from difffake_ray.datasets.manifest import ManifestError
    from difffake_ray.pipeline.extract import run_extract

    for name, text in (("no_uri.csv", "video_id,label\na,real\n"),
                       ("bad_label.csv", "video_id,uri,label\na,a.mp4,maybe\n"),
                       ("duplicate.csv", "video_id,uri\na,a.mp4\na,b.mp4\n")):
        path = tmp_path / name
        path.write_text(text)
        out = tmp_path / f"out_{name}"
        with pytest.raises(ManifestError, match=name):
            run_extract(str(path), str(out), fast_config(), progress=False)
        assert not out.exists()  # failed before any output was written
