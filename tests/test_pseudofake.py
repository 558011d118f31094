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
    region = lm[R.DIFFFAKE_SCHEMES[scheme]]
    hull = hull_mask(region, (224, 224))
    centre = region.mean(axis=0, keepdims=True)
    inside, outside, at_centre = [], [], []
    for seed in range(8):
        mask = gen.generate(lm, (224, 224), np.random.default_rng(seed))
        assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() <= 1
        inside.append(mask[hull > 0].mean())
        outside.append(mask[hull == 0].mean())
        at_centre.append(_covered(mask, centre)[0])
    # the weight sits on the scheme's region: a thin eye band blurs out more than the whole face
    assert np.mean(inside) > 0.3 and np.mean(inside) > 20 * np.mean(outside)
    assert np.mean(at_centre) > 0.5


def test_paper_schemes_are_equally_likely_and_reference_follows_its_code():
    from difffake_ray.pseudofake.masks import DiffFakeMask

    rng = np.random.default_rng(0)
    n = 6000
    paper = DiffFakeMask(variant="paper")
    counts = {s: 0 for s in paper.schemes}
    for _ in range(n):
        counts[paper.choose(rng)] += 1
    assert all(abs(c / n - 0.25) < 0.025 for c in counts.values()), counts
    reference = DiffFakeMask(variant="reference")
    counts = {s: 0 for s in reference.schemes}
    for _ in range(n):
        counts[reference.choose(rng)] += 1
    assert abs(counts["global"] / n - 0.5) < 0.025, counts
    assert all(abs(counts[s] / n - 1 / 6) < 0.025 for s in ("eyes", "mouth", "lower_head")), counts


def test_reference_landmark_sets():
    assert {0, 1, 14, 15} <= set(R.REFERENCE_EYES) and set(range(17, 27)) | set(range(36, 48)) <= set(R.REFERENCE_EYES)
    assert sorted(R.REFERENCE_LOWER_HEAD) == list(range(1, 16)) + [29, 30]
    assert set(R.REFERENCE_MOUTH) == set(range(48, 68)) | set(range(4, 13)) | set(range(31, 36))
    assert len(R.FACE_COMPONENTS) == 8


@pytest.mark.parametrize("kind", ["dfl_full", "extended", "components", "facehull"])
def test_face_xray_hulls_cover_eyes_nose_and_mouth(face_and_landmarks, kind):
    from difffake_ray.pseudofake.masks import face_xray_hull

    _, lm = face_and_landmarks
    mask = face_xray_hull(lm, (224, 224), kind)
    for part in (R.RIGHT_EYE, R.LEFT_EYE, R.NOSE_BASE, R.MOUTH[:12]):
        assert _covered(mask, lm[part].mean(0, keepdims=True))[0] == 1.0
    if kind == "extended":  # reaches above the brows, unlike dfl_full
        assert mask.sum() > face_xray_hull(lm, (224, 224), "dfl_full").sum()


def test_boundary_blur_draws_sbi_ranges():
    from difffake_ray.pseudofake.masks import BoundaryBlur

    rng = np.random.default_rng(0)
    draws = [BoundaryBlur.draw(rng) for _ in range(3000)]
    odd = set(range(5, 26, 2))
    assert {d.kernel1 for d in draws} == odd and {d.kernel2 for d in draws} == odd  # 5 and 25 included
    assert {d.height for d in draws} <= set(range(192, 257)) and min(d.width for d in draws) == 192
    assert max(d.width for d in draws) == 256
    assert min(d.sigma2 for d in draws) == 5 and max(d.sigma2 for d in draws) == 45


def test_erosion_always_applied_in_the_paper_and_skipped_sometimes_by_the_reference(face_and_landmarks):
    """SBI normalises the blurred mask before zeroing what is under 1; the reference code does not,
    so where the blurred peak stays a rounding error under 1 nothing survives and the un-eroded mask
    is used."""
    import cv2

    from difffake_ray.pseudofake.masks import BoundaryBlur, DiffFakeMask, elastic_deform, erode_soft_edge

    _, lm = face_and_landmarks
    skipped = {}
    for variant in ("paper", "reference"):
        gen, rng = DiffFakeMask(variant=variant), np.random.default_rng(0)
        n_skipped = 0
        for _ in range(300):
            region = elastic_deform(gen.region(lm, (224, 224), rng), rng, 50, 7 * 224 / 256)
            p = BoundaryBlur.draw(rng)
            blurred = cv2.GaussianBlur(cv2.resize(region, (p.width, p.height)), (p.kernel1, p.kernel1), 0)
            n_skipped += erode_soft_edge(blurred, normalise=variant == "paper") is None
        skipped[variant] = n_skipped / 300
    assert skipped["paper"] == 0.0
    assert 0.02 < skipped["reference"] < 0.4, skipped
    peak_under_one = np.full((8, 8), 0.99999994, np.float32)
    assert erode_soft_edge(peak_under_one, normalise=False) is None
    assert erode_soft_edge(peak_under_one, normalise=True).min() == 1.0


@pytest.mark.parametrize("variant, bc", [("paper", 0.3), ("reference", 0.1)])
def test_transforms_use_the_reference_values(variant, bc):
    import albumentations as A
    import cv2

    from difffake_ray.pseudofake.transforms import BRIGHTNESS_CONTRAST

    t = SourceTargetTransforms(brightness_contrast=BRIGHTNESS_CONTRAST[variant])
    rgb, hsv, rbc, quality = t.colour.transforms
    assert isinstance(rgb, A.RGBShift) and rgb.p == 0.3 and tuple(rgb.r_shift_limit) == (-20, 20)
    assert isinstance(hsv, A.HueSaturationValue) and hsv.p == 1
    assert tuple(hsv.hue_shift_limit) == tuple(hsv.sat_shift_limit) == tuple(hsv.val_shift_limit) == (-0.3, 0.3)
    assert isinstance(rbc, A.RandomBrightnessContrast) and rbc.p == 1
    assert tuple(rbc.brightness_limit) == tuple(rbc.contrast_limit) == pytest.approx((-bc, bc))
    downscales, sharpen = quality.transforms
    assert sorted(d.scale_range for d in downscales.transforms) == [(0.25, 0.25), (0.5, 0.5)]
    assert all(d.interpolation_pair == {"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR}
               for d in downscales.transforms)
    assert isinstance(sharpen, A.Sharpen) and tuple(sharpen.alpha) == (0.2, 0.5)
    affine = t.affine.transforms[0]
    assert affine.scale["x"] == pytest.approx((0.95, 1 / 0.95))


def test_the_region_moves_with_the_source_before_its_boundary_is_blurred(face_and_landmarks):
    """The reference's order: affine on source and region, then deformation and blur of the moved
    region; the blur never passes through the affine."""
    img, lm = face_and_landmarks
    maker = PseudoFakeMaker(["sbi"])
    gen = maker.generators["sbi"]
    seen = []
    original = gen.soften
    gen.soften = lambda m, rng: seen.append(m.copy()) or original(m, rng)
    maker.make(img, lm, np.random.default_rng(4))
    soft = ((seen[0] > 0.01) & (seen[0] < 0.99)).mean()
    assert len(seen) == 1 and seen[0].mean() > 0.1
    assert 0 < soft < 0.03  # moved (interpolated at its edge), not yet blurred


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
