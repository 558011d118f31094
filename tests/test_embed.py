"""The robustness protocol (resize 128/256, Gaussian blur 3/5, JPEG 50/100 applied to crops before
embedding) and the crop embedder, without Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from difffake_ray.embed import PERTURBATIONS, CropEmbedder, perturb
from difffake_ray import schema
from difffake_ray.preprocess import InputSpec


@pytest.fixture(scope="module")
def crop(astronaut_rgb):
    import cv2

    return cv2.resize(astronaut_rgb[0:260, 110:370], (224, 224), interpolation=cv2.INTER_AREA)


def sharpness(img):
    import cv2

    return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()


def test_every_perturbation_keeps_shape_and_dtype(crop):
    for name in PERTURBATIONS:
        out = perturb(crop, name)
        assert out.shape == crop.shape and out.dtype == np.uint8, name
    assert perturb(crop, "none") is crop
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(crop, "jpeg5O")


def test_perturbations_degrade_in_the_stated_order(crop):
    s = sharpness(crop)
    assert sharpness(perturb(crop, "blur5")) < sharpness(perturb(crop, "blur3")) < s
    assert sharpness(perturb(crop, "resize128")) < s  # down to 128 px and back loses detail
    err = {q: np.abs(perturb(crop, f"jpeg{q}").astype(int) - crop).mean() for q in (50, 100)}
    assert 0 < err[100] < err[50]
    # resize256 goes up to 256 and back: nearly lossless, unlike resize128
    assert np.abs(perturb(crop, "resize256").astype(int) - crop).mean() < np.abs(
        perturb(crop, "resize128").astype(int) - crop).mean()


def test_embedder_applies_the_perturbation_and_marks_corrupt_crops(tmp_path, crop):
    from difffake_ray.backbone import create_backbone, export_embedder
    from difffake_ray.faces.codec import encode_image

    uri = str(tmp_path / "tiny.pt")
    model = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(model, uri, "test_efficientnet", InputSpec.from_model(model, 64))
    rows = [dict(video_id="v", uri="u", label="real", dataset="d", method="m", split="test", video_status="ok",
                 status="ok", error=None, frame_index=i, crop=encode_image(crop)) for i in range(2)]
    rows[1]["crop"] = b"not an image"
    faces = pa.Table.from_pylist(rows, schema=schema.FACES_SCHEMA)
    clean = CropEmbedder(uri, batch_size=4).embed_faces(faces)
    assert clean.schema.equals(schema.embeddings_schema(256))
    clean, blurred = clean.to_pylist(), CropEmbedder(uri, batch_size=4, perturbation="blur5").embed_faces(faces).to_pylist()
    assert len(clean[0]["embedding"]) == 256
    assert not np.allclose(clean[0]["embedding"], blurred[0]["embedding"])
    assert clean[1]["status"] == "embed_error" and "frame 1" in clean[1]["error"] and clean[1]["embedding"] is None


def test_robustness_rejects_an_unknown_perturbation_before_any_work(tmp_path):
    from difffake_ray.config import Config
    from difffake_ray.pipeline.robustness import format_table, run_robustness

    with pytest.raises(ValueError, match="jpeg5O"):
        run_robustness(str(tmp_path / "faces"), str(tmp_path / "out"), "b.pt", "adm", Config(), ["none", "jpeg5O"])
    assert not (tmp_path / "out").exists()
    row = {"overall": {"auc": 0.9, "ap": 0.95}, "per_method": {"synthetic/faceswap": 0.8}}
    table = format_table({"none": row, "blur3": row})
    assert table.splitlines()[0].split()[:3] == ["perturbation", "AUC", "AP"] and "faceswap" in table
    assert "0.9000" in table.splitlines()[2]
