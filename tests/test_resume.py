"""Reruns that heal and never mix: one writer per output, one set of settings per output, failed
videos redone, downstream parts of rewritten inputs dropped. Plain functions, no Ray, except the
last test, which runs extract twice on a real corpus."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from difffake_ray import schema, storage
from difffake_ray.pipeline.claim import LOCK_FILE, SETTINGS_FILE, OutputClaimError, claim
from difffake_ray.pipeline.common import resume_state
from difffake_ray.pipeline.parts import DONE_DIR, pending_parts


def test_a_second_writer_fails_fast_and_a_dead_writers_lock_is_taken_over(tmp_path, capsys):
    out = str(tmp_path / "out")
    with claim(out, "extract", {"n_frames": 8}):
        with pytest.raises(OutputClaimError, match=r"being written by another run \(extract, pid \d+"):
            with claim(out, "extract", {"n_frames": 8}):
                pass
    assert not os.path.exists(os.path.join(out, LOCK_FILE))  # released
    dead = {"stage": "extract", "host": __import__("socket").gethostname(), "pid": 2 ** 22 + 12345,
            "run": "old", "started": "then"}
    json.dump(dead, open(os.path.join(out, LOCK_FILE), "w"))
    with claim(out, "extract", {"n_frames": 8}):
        pass
    assert "taking over" in capsys.readouterr().out


def test_other_settings_refuse_and_overwrite_empties_the_folder(tmp_path):
    out = str(tmp_path / "out")
    with claim(out, "extract", {"n_frames": 8, "crop_size": 224}):
        (tmp_path / "out" / "part-a.parquet").write_bytes(b"rows")
    with pytest.raises(OutputClaimError) as exc:
        with claim(out, "extract", {"n_frames": 16, "crop_size": 224}):
            pass
    assert "n_frames: 8 -> 16" in str(exc.value) and "--overwrite" in str(exc.value)
    assert (tmp_path / "out" / "part-a.parquet").exists()  # nothing touched
    with claim(out, "extract", {"n_frames": 16, "crop_size": 224}, overwrite=True):
        assert not (tmp_path / "out" / "part-a.parquet").exists()
    assert json.load(open(tmp_path / "out" / SETTINGS_FILE))["settings"]["n_frames"] == 16


def _part(folder, name, videos):
    rows = [dict(video_id=v, uri="u", label="real", dataset="d", method="m", split="test", video_status=s,
                 status=s, error=None, frame_index=0) for v, s in videos]
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.embeddings_schema(2).remove(10)), folder / name)


def test_resume_redoes_transient_failures_by_default_and_every_failure_when_asked(tmp_path):
    out = tmp_path / "faces"
    _part(out, "part-1.parquet", [("a", "ok"), ("b", "missing")])
    _part(out, "part-2.parquet", [("c", "ok"), ("d", "no_face")])
    _part(out, "part-3.parquet", [("e", "error"), ("f", "unreadable")])
    kept, redone = resume_state(str(out))
    assert kept == {"c", "d"} and redone == {"missing": 1, "error": 1}
    assert sorted(os.listdir(out)) == ["part-2.parquet"]  # parts are rewritten whole
    kept, redone = resume_state(str(out), redo_failed=True)
    assert kept == set() and redone == {"no_face": 1}


def test_downstream_outputs_of_rewritten_parts_are_dropped(tmp_path):
    faces, emb = tmp_path / "faces", tmp_path / "emb"
    _part(faces, "part-new.parquet", [("a", "ok")])
    _part(faces, "part-kept.parquet", [("b", "ok")])
    for name in ("part-old.parquet", "part-kept.parquet"):
        _part(emb, name, [("a" if name == "part-old.parquet" else "b", "ok")])
        os.makedirs(emb / DONE_DIR, exist_ok=True)
        (emb / DONE_DIR / name).write_bytes(b"")
    assert list(pending_parts(str(faces), str(emb))) == [str(faces / "part-new.parquet")]
    # the two orphans (the old part's output and its marker) are gone, the kept part untouched
    assert sorted(os.listdir(emb)) == [DONE_DIR, "part-kept.parquet"] and os.listdir(emb / DONE_DIR) == ["part-kept.parquet"]


def test_extract_rerun_heals_a_missing_video_and_refuses_other_settings(ray_local, corpus, tmp_path):
    from difffake_ray.datasets.manifest import manifest_table, write_manifest
    from difffake_ray.pipeline.extract import run_extract
    from difffake_ray.verify import verify_output
    from tests.conftest import fast_config

    rows = pq.read_table(os.path.join(corpus, "manifest.parquet")).to_pylist()[:3]
    rows = [dict(r, uri=os.path.join(corpus, r["uri"])) for r in rows]
    late = str(tmp_path / "late.mp4")
    rows.append(dict(rows[0], video_id="late", uri=late))  # not there yet
    manifest = str(tmp_path / "manifest.csv")
    write_manifest(manifest_table(rows), manifest)
    out = str(tmp_path / "faces")
    first = run_extract(manifest, out, fast_config(), progress=False)
    assert first["counts"]["videos"]["missing"] == 1
    shutil.copy(rows[0]["uri"], late)  # the file arrives
    second = run_extract(manifest, out, fast_config(), progress=False)
    assert second["counts"]["videos"] == {"ok": 4} and second["inputs"]["redone_failed"] == {"missing": 1}
    assert verify_output(out)["ok"]
    before = storage.read_parquet_dir(out, columns=["video_id", "frame_index"]).sort_by("video_id")
    other = fast_config()
    other.extract.n_frames = 12
    with pytest.raises(OutputClaimError, match="n_frames: 8 -> 12"):
        run_extract(manifest, out, other, progress=False)
    assert storage.read_parquet_dir(out, columns=["video_id", "frame_index"]).sort_by("video_id").equals(before)
    again = run_extract(manifest, out, other, progress=False, overwrite=True)
    assert again["counts"]["videos"] == {"ok": 4} and verify_output(out)["ok"]


def test_overwrite_removes_only_what_a_stage_wrote(tmp_path, capsys):
    out = tmp_path / "out"
    with claim(str(out), "score", {"seed": 0}):
        (out / "dataset=synthetic").mkdir()
        (out / "dataset=synthetic" / "part-a.parquet").write_bytes(b"rows")
        (out / DONE_DIR).mkdir()
        (out / DONE_DIR / "part-a.parquet").write_bytes(b"")
    (out / "notes.txt").write_text("the user's own file")
    (out / "holiday.mp4").write_bytes(b"a video")
    (out / "dataset=synthetic" / "mine.csv").write_text("kept")
    with claim(str(out), "score", {"seed": 1}, overwrite=True):
        pass
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["_settings.json", "dataset=synthetic", "dataset=synthetic/mine.csv", "holiday.mp4", "notes.txt"]
    assert "kept 3 it did not write" in capsys.readouterr().out


def test_an_output_that_is_holds_or_lies_inside_the_input_is_refused_and_nothing_is_touched(corpus, tmp_path):
    from difffake_ray.pipeline.extract import run_extract
    from tests.conftest import fast_config

    src = tmp_path / "videos"
    shutil.copytree(corpus, src)
    before = sorted(p.name for p in src.rglob("*"))
    listing = tmp_path / "lists" / "manifest.csv"  # a manifest kept apart from the videos it names
    listing.parent.mkdir()
    listing.write_text("video_id,uri\n" + "".join(f"{p.stem},{p}\n" for p in sorted(src.rglob("*.mp4"))))
    for source, out, how in ((src, src, "is the source"), (src, src / "faces", "lies inside the source"),
                             (src, tmp_path, "holds the source"), (listing, src / "real", "holds the input video")):
        with pytest.raises(OutputClaimError, match=how):
            run_extract(str(source), str(out), fast_config(), progress=False, overwrite=True)
    assert sorted(p.name for p in src.rglob("*")) == before
    assert not (src / "faces").exists() and not (src / SETTINGS_FILE).exists()


def test_rows_without_a_settings_record_are_not_taken_for_this_runs(tmp_path):
    out = tmp_path / "out"
    with claim(str(out), "extract", {"n_frames": 8}):
        (out / "part-a.parquet").write_bytes(b"rows")
    (out / SETTINGS_FILE).unlink()
    with pytest.raises(OutputClaimError, match="holds rows but no _settings.json"):
        with claim(str(out), "extract", {"n_frames": 16}):
            pass
    (out / SETTINGS_FILE).write_text('{"settings": {"n_fr')  # truncated
    with pytest.raises(OutputClaimError, match=r"_settings.json: unreadable"):
        with claim(str(out), "extract", {"n_frames": 16}):
            pass


def test_a_video_whose_file_changed_is_redone_and_so_is_every_stage_after(tmp_path):
    from difffake_ray.pipeline.parts import _write_part

    videos = tmp_path / "videos"
    videos.mkdir()
    for v in "ab":
        (videos / f"{v}.mp4").write_bytes(b"first take")
    faces = tmp_path / "faces"
    faces.mkdir()
    rows = [dict(video_id=v, uri=str(videos / f"{v}.mp4"), label="real", dataset="d", method="m", split="test",
                 video_status="ok", status="ok", frame_index=0,
                 source_signature=storage.file_signature(str(videos / f"{v}.mp4"))) for v in "ab"]
    for i, row in enumerate(rows):
        pq.write_table(pa.Table.from_pylist([row], schema=schema.FACES_SCHEMA), faces / f"part-{i}.parquet")
    emb = str(tmp_path / "emb")
    for f, signature in pending_parts(str(faces), emb).items():  # embed did every part
        _write_part(emb, os.path.basename(f), pa.table({"x": [1]}), done=signature)
    assert pending_parts(str(faces), emb) == {}
    os.utime(videos / "b.mp4", ns=(0, 0))  # the same name, other content (here: another time)
    (videos / "b.mp4").write_bytes(b"second take, longer")
    kept, redone = resume_state(str(faces))
    assert kept == {"a"} and redone == {"changed": 1} and sorted(os.listdir(faces)) == ["part-0.parquet"]
    pq.write_table(pa.Table.from_pylist([rows[1]], schema=schema.FACES_SCHEMA), faces / "part-1.parquet")  # redone
    assert list(pending_parts(str(faces), emb)) == [str(faces / "part-1.parquet")]  # embed redoes it too
    _write_part(emb, "part-1.parquet", pa.table({"x": [2]}), done=storage.file_signature(str(faces / "part-1.parquet")))
    assert pending_parts(str(faces), emb) == {} and len(os.listdir(os.path.join(emb, DONE_DIR))) == 2
