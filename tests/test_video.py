import numpy as np
import pytest

from difffake_ray import schema
from difffake_ray.datasets.synthetic import write_video
from difffake_ray.faces.video import VideoError, read_sampled_frames, sample_frame_indices


def test_linspace_sampling_is_equally_spaced_and_inclusive():
    idx = sample_frame_indices(400, 40)
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == 399
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1


def test_reference_sampling_steps_from_zero():
    assert sample_frame_indices(100, 40, "reference").tolist() == list(range(0, 80, 2))


def test_short_video_gives_every_frame():
    assert sample_frame_indices(7, 40).tolist() == list(range(7))
    assert sample_frame_indices(0, 40).tolist() == []


def _numbered_frames(n, w=320, h=240):
    """Each frame shows its index as 8 binary blocks, robust to H.264 compression."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 30, np.uint8)
        for bit in range(8):
            if (i >> bit) & 1:
                f[:, bit * (w // 8):(bit + 1) * (w // 8)] = 220
        frames.append(f)
    return frames


def _read_number(img):
    w = img.shape[1]
    return sum(1 << b for b in range(8) if img[:, b * (w // 8) + w // 16].mean() > 125)


@pytest.mark.parametrize("mode", ["linspace", "reference"])
def test_decoded_frames_are_exactly_the_sampled_ones(tmp_path, mode):
    path = str(tmp_path / "numbered.mp4")
    write_video(_numbered_frames(137), path, fps=25)
    info, frames = read_sampled_frames(path, 40, mode)
    assert info.frame_count == 137 and (info.width, info.height) == (320, 240)
    wanted = sample_frame_indices(137, 40, mode).tolist()
    assert [f.index for f in frames] == wanted
    assert [_read_number(f.image) for f in frames] == wanted  # the pixels are those frames
    assert frames[1].timestamp == pytest.approx(wanted[1] / 25, abs=1e-3)


def test_missing_empty_and_non_video_files(tmp_path):
    with pytest.raises(VideoError) as e:
        read_sampled_frames(str(tmp_path / "nope.mp4"), 40)
    assert e.value.status == schema.MISSING
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    for name in ("empty.mp4", "text.mp4"):
        with pytest.raises(VideoError) as e:
            read_sampled_frames(str(tmp_path / name), 40)
        assert e.value.status in (schema.UNREADABLE, schema.NO_FRAMES)
        assert name in str(e.value)


def test_truncated_video_resamples_over_what_decodes(tmp_path):
    path = tmp_path / "full.mp4"
    write_video(_numbered_frames(200), str(path), fps=25)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        info, frames = read_sampled_frames(str(cut), 10)
    except VideoError as exc:  # mp4 with its index at the end can be unopenable when cut
        assert exc.status in (schema.UNREADABLE, schema.NO_FRAMES)
        return
    assert frames and [f.index for f in frames] == sorted({f.index for f in frames})
    assert all(_read_number(f.image) == f.index % 256 for f in frames)


def test_causes_are_named_not_all_called_missing(tmp_path):
    from difffake_ray.faces.video import probe

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    cases = {str(tmp_path / "a"): ("unreadable", "a loop of symbolic links"),
             str(tmp_path / "gone.mp4"): ("missing", "file not found"),
             "http://127.0.0.1:9/v.mp4": ("error", "connection refused")}  # port 9: nothing listens
    for uri, (status, cause) in cases.items():
        with pytest.raises(VideoError) as exc:
            probe(uri)
        assert exc.value.status == status and str(exc.value) == f"{uri}: {cause}"


def test_a_frame_handler_sees_each_sampled_frame_once_and_none_is_kept(tmp_path):
    """With a handler, decoded frames are not accumulated: memory is one frame, whatever n_frames."""
    import gc
    import weakref

    path = str(tmp_path / "v.mp4")
    write_video(_numbered_frames(30), path, fps=25)
    seen, alive = [], []

    def handle(frame):
        gc.collect()
        alive.append(sum(ref() is not None for ref in seen))
        seen.append(weakref.ref(frame))
        return frame.index

    info, handled = read_sampled_frames(path, 10, "linspace", handle=handle)
    assert handled == sample_frame_indices(30, 10).tolist() and info.frame_count == 30
    assert max(alive) == 0  # no earlier frame survives its handling


def test_a_stream_that_grows_past_the_frame_limit_is_refused_before_a_frame_is_kept(tmp_path, monkeypatch):
    """A stream that declares 64x64 and then carries larger frames (here 320x320 against a limit
    of 100x100; in the field, 16000x16000 against 8192x8192): refused, naming the frame."""
    import av

    import difffake_ray.faces.video as video

    def raw(path, side):
        with av.open(path, "w", format="h264") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = side, side, "yuv420p"
            for i in range(3):
                for p in s.encode(av.VideoFrame.from_ndarray(np.full((side, side, 3), 100 + i, np.uint8), "rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return open(path, "rb").read()

    from fractions import Fraction

    stream = tmp_path / "grows.h264"  # two H.264 streams back to back: the size changes at frame 3
    stream.write_bytes(raw(str(tmp_path / "a.h264"), 64) + raw(str(tmp_path / "b.h264"), 320))
    grows = tmp_path / "grows.mkv"
    with av.open(str(stream)) as src, av.open(str(grows), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for i, packet in enumerate(p for p in src.demux(src.streams.video[0]) if p.size):
            packet.stream, packet.pts, packet.dts, packet.time_base = out, i, i, Fraction(1, 25)
            dst.mux(packet)
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 100 * 100)
    handled = []
    with pytest.raises(video.VideoError, match=r"grows.mkv: frame 3 is 320x320, over the 10000 pixels") as exc:
        video.read_sampled_frames(str(grows), 6, handle=lambda f: handled.append(f.image.shape))
    assert exc.value.status == "unreadable" and all(shape[:2] == (64, 64) for shape in handled)


def test_frames_not_sampled_are_skipped_and_the_sampled_ones_decode_as_in_a_full_pass(tmp_path, monkeypatch):
    """x264's B-frames are non-reference: a pass that skips those not sampled gives the same
    pixels, indices and times as a pass that decodes every frame."""
    from difffake_ray.faces import video

    path = str(tmp_path / "numbered.mp4")
    write_video(_numbered_frames(150), path, fps=25)
    skipping = []
    real = video._decode_skipping
    monkeypatch.setattr(video, "_decode_skipping", lambda *a, **k: skipping.append(1) or real(*a, **k))
    _, fast = read_sampled_frames(path, 40)
    assert skipping, "a local H.264 file read single-threaded takes the skipping pass"
    monkeypatch.setattr(video, "_display_ranks", lambda *a: None)
    _, full = read_sampled_frames(path, 40)
    assert len(skipping) == 1 and [f.index for f in fast] == [f.index for f in full] == sample_frame_indices(150, 40).tolist()
    assert all(np.array_equal(a.image, b.image) and a.timestamp == b.timestamp for a, b in zip(fast, full))
    assert [_read_number(f.image) for f in fast] == [f.index for f in fast]
