import numpy as np
import pytest

from difffake_ray.pseudofake import landmark_regions as R
from difffake_ray.pseudofake.blend import PseudoFakeMaker, blend
from difffake_ray.pseudofake.masks import create_mask_generator, hull_mask
from difffake_ray.pseudofake.transforms import SourceTargetTransforms


@pytest.fixture(scope="module")
def face_and_landmarks(astronaut_rgb):
    from difffake_ray.faces.crop import crop_face, crop_window, to_crop_coordinates
    from difffake_ray.faces.detectors import create_detector, largest_face
    from difffake_ray.faces.landmarkers import create_landmarker

    box = largest_face(create_detector("haar").detect(astronaut_rgb))
    pts = create_landmarker("dlib68").predict(astronaut_rgb, box)
    window = crop_window(box, 1.3, 512, 512)
    return crop_face(astronaut_rgb, window, 224), to_crop_coordinates(pts, window, 224)


def _covered(mask, pts):
    xs = np.clip(np.round(pts[:, 0]).astype(int), 0, mask.shape[1] - 1)
    ys = np.clip(np.round(pts[:, 1]).astype(int), 0, mask.shape[0] - 1)
    return mask[ys, xs]


@pytest.mark.parametrize("scheme", list(R.DIFFFAKE_SCHEMES))
def test_difffake_schemes_cover_their_region(face_and_landmarks, scheme):
    _, lm = face_and_landmarks
    gen = create_mask_generator("difffake", scheme=scheme)
    mask = gen.generate(lm, (224, 224), np.random.default_rng(0))
    assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() <= 1 and mask.max() > 0.99
    region = lm[R.DIFFFAKE_SCHEMES[scheme]]
    centre = region.mean(axis=0, keepdims=True)
    assert _covered(mask, centre)[0] > 0.5  # the region's centre lies inside the mask
    hull = hull_mask(region, (224, 224))
    inside = mask[hull > 0].mean()
    outside = mask[hull == 0].mean()
    assert inside > 0.5 and inside > 3 * outside


@pytest.mark.parametrize("name", ["sbi", "bbmg"])
def test_global_masks_cover_the_face(face_and_landmarks, name):
    _, lm = face_and_landmarks
    mask = create_mask_generator(name).generate(lm, (224, 224), np.random.default_rng(1))
    assert mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    hull = hull_mask(lm, (224, 224))
    assert mask[hull > 0].mean() > 0.5 and mask[hull == 0].mean() < 0.3


def test_bbmg_local_parts_present(face_and_landmarks):
    _, lm = face_and_landmarks
    rng = np.random.default_rng(2)
    for _ in range(5):
        mask = create_mask_generator("bbmg").generate(lm, (224, 224), rng)
        assert _covered(mask, lm[R.MOUTH].mean(0, keepdims=True))[0] > 0.3


def test_blend_equals_formula():
    rng = np.random.default_rng(0)
    s, t = rng.integers(0, 255, (2, 8, 8, 3)).astype(np.uint8)
    m = rng.random((8, 8)).astype(np.float32)
    out = blend(s, t, m)
    assert np.allclose(out, s * m[..., None] + t * (1 - m[..., None]), atol=1e-4)
    assert out.dtype == np.float32


def test_transforms_keep_shape_and_dtype(face_and_landmarks):
    img, lm = face_and_landmarks
    mask = hull_mask(lm, (224, 224))
    s, t, m = SourceTargetTransforms()(img, mask, np.random.default_rng(3))
    assert s.shape == t.shape == img.shape and s.dtype == t.dtype == np.uint8
    assert m.shape == (224, 224) and m.dtype == np.float32


def test_pseudofake_is_reproducible_and_differs_from_real(face_and_landmarks):
    img, lm = face_and_landmarks
    maker = PseudoFakeMaker(["difffake", "sbi", "bbmg"])
    a = maker.make(img, lm, np.random.default_rng(7))
    b = maker.make(img, lm, np.random.default_rng(7))
    assert (a.image == b.image).all() and a.generator == b.generator
    assert a.image.shape == img.shape and a.image.dtype == np.uint8
    assert np.abs(a.image.astype(int) - img).mean() > 0.2
