"""Model files fail at load, in one line naming the file and the cause; a non-finite score is an
``error`` row, never ``ok``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import torch

from difffake_ray import schema
from difffake_ray.adm.models import create_anomaly_model
from difffake_ray.adm.persistence import ModelFileError, load_model, save_model
from difffake_ray.backbone import ModelFileError as BackboneFileError
from difffake_ray.backbone import create_backbone, export_embedder, load_embedder, load_embedder_file
from difffake_ray.preprocess import InputSpec
from difffake_ray.adm.scoring import score_videos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def adm(tmp_path):
    X = np.random.default_rng(0).normal(size=(200, 4))
    model = create_anomaly_model("gmm", n_components=1, seed=0).fit(X)
    uri = str(tmp_path / "adm")
    save_model(model, uri, {"anomaly_model": "gmm", "combination": "sub2", "l2_normalize": True, "embedding_dim": 2})
    return uri


@pytest.fixture()
def embedder(tmp_path):
    uri = str(tmp_path / "best.pt")
    model = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(model, uri, "test_efficientnet", InputSpec.from_model(model, 32))
    return uri


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_nan_in_the_gmm_fails_at_load(adm):
    z = dict(np.load(os.path.join(adm, "model.npz")))
    z["means"][0, 0] = np.nan
    np.savez(os.path.join(adm, "model.npz"), **z)
    with pytest.raises(ModelFileError) as exc:
        load_model(adm)
    assert _one_line(exc) == f"{adm}/model.npz: means holds 1 non-finite value(s) (NaN/inf)"


def test_a_model_json_without_l2_normalize_fails_at_load_not_mid_job(adm):
    meta = json.load(open(os.path.join(adm, "model.json")))
    del meta["l2_normalize"]
    json.dump(meta, open(os.path.join(adm, "model.json"), "w"))
    with pytest.raises(ModelFileError, match="model.json: no 'l2_normalize'"):
        load_model(adm)


def test_truncated_npz_and_invalid_json_are_named(adm):
    with open(os.path.join(adm, "model.json"), "w") as fh:
        fh.write("{not json")
    with pytest.raises(ModelFileError) as exc:
        load_model(adm)
    assert _one_line(exc).startswith(f"{adm}/model.json: not valid JSON")
    save = os.path.join(adm, "model.npz")
    data = open(save, "rb").read()
    with open(os.path.join(adm, "model.json"), "w") as fh:
        json.dump({"anomaly_model": "gmm"}, fh)
    with open(save, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as exc:
        load_model(adm)
    assert _one_line(exc).startswith(f"{save}: not a readable pickle-free npz")


def test_backbone_files_that_cannot_be_used_are_named(tmp_path, embedder):
    data = open(embedder, "rb").read()
    truncated = str(tmp_path / "truncated.pt")
    open(truncated, "wb").write(data[: len(data) // 3])
    with pytest.raises(BackboneFileError) as exc:
        load_embedder_file(truncated)
    assert _one_line(exc).startswith(f"{truncated}: not a readable PyTorch file")

    bare = str(tmp_path / "bare.pt")
    torch.save({"conv.weight": torch.zeros(2)}, bare)  # a state dict without meta
    with pytest.raises(BackboneFileError) as exc:
        load_embedder_file(bare)
    assert _one_line(exc).startswith(f"{bare}: not an exported difffake embedder")

    pickled = str(tmp_path / "pickled.pt")
    torch.save({"meta": {"format": "x"}, "state_dict": {}, "hook": np.random.default_rng(0)}, pickled)
    with pytest.raises(BackboneFileError) as exc:
        load_embedder_file(pickled)
    assert _one_line(exc).startswith(f"{pickled}: refused by torch.load(weights_only=True)")

    obj = torch.load(embedder, weights_only=True)
    name = next(k for k, t in obj["state_dict"].items() if t.is_floating_point())
    obj["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(obj, embedder)
    with pytest.raises(BackboneFileError, match=f"non-finite weights .* e.g. {name}"):
        load_embedder(embedder)


def test_a_non_finite_pair_score_is_an_error_row_not_ok():
    model = create_anomaly_model("gmm", n_components=1, seed=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
    meta = {"combination": "sub2", "l2_normalize": False, "embedding_dim": 2}
    rows = [dict(video_id=v, uri="u", label="real", dataset="d", method="m", split="test", video_status="ok",
                 status="ok", error=None, frame_index=f, embedding=[float(f), 1.0 if v == "good" else float("nan")])
            for v in ("good", "bad") for f in range(4)]
    out = {r["video_id"]: r for r in score_videos(pa.Table.from_pylist(rows, schema=schema.embeddings_schema(2)),
                                                  model, meta, 30, 1, 0)}
    assert out["good"]["status"] == "ok" and np.isfinite(out["good"]["score"])
    assert out["bad"]["status"] == "error" and out["bad"]["score"] is None and "not finite" in out["bad"]["error"]


def test_cli_names_the_file_in_one_line(adm, tmp_path):
    meta = json.load(open(os.path.join(adm, "model.json")))
    del meta["l2_normalize"]
    json.dump(meta, open(os.path.join(adm, "model.json"), "w"))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "score", str(tmp_path / "emb"),
                           str(tmp_path / "scores"), "--adm", adm], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "model.json: no 'l2_normalize'" in lines[0], done.stderr
    assert not (tmp_path / "scores").exists()


def test_a_full_disk_is_named_with_the_path_in_one_line(tmp_path, monkeypatch):
    import errno

    import fsspec.implementations.local as local

    from difffake_ray import storage
    from difffake_ray.pipeline.parts import _root_cause

    class Full:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local.LocalFileSystem, "open", lambda self, path, mode="rb", **kw: Full())
    target = str(tmp_path / "emb" / "part-1.parquet")
    with pytest.raises(storage.WriteError) as exc:
        storage.write_bytes_atomic(target, b"rows")
    assert exc.value.strerror == f"cannot write {target}: disk full"
    try:  # as a Ray task error carries it: the cause is found behind the wrappers
        try:
            raise exc.value
        except storage.WriteError as inner:
            raise RuntimeError("ray task failed") from inner
    except RuntimeError as wrapped:
        assert _root_cause(wrapped) is exc.value
