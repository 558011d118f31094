import pyarrow as pa
import pytest

from difffake_ray import schema
from difffake_ray.datasets.manifest import ManifestError, load_manifest, manifest_table


def test_folder_layout_gives_labels_and_methods(tmp_path):
    for rel in ("real/a.mp4", "real/sub/b.mp4", "fake/deepfakes/c.mp4", "fake/f2f/d.avi", "notes.txt"):
        p = tmp_path / "ds" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    t = load_manifest(str(tmp_path / "ds"))
    assert t.schema == schema.MANIFEST_SCHEMA
    rows = {r["video_id"]: r for r in t.to_pylist()}
    assert set(rows) == {"ds/real/a", "ds/real/sub/b", "ds/fake/deepfakes/c", "ds/fake/f2f/d"}
    assert rows["ds/fake/deepfakes/c"]["label"] == "fake" and rows["ds/fake/deepfakes/c"]["method"] == "deepfakes"
    assert rows["ds/real/a"]["method"] == "original"


def test_csv_manifest_resolves_relative_uris(tmp_path):
    (tmp_path / "m.csv").write_text("video_id,uri,label,dataset,method,split\n"
                                    "v1,videos/1.mp4,REAL,ff,original,train\nv2,/abs/2.mp4,fake,ff,df,test\n")
    t = load_manifest(str(tmp_path / "m.csv"))
    assert t.column("uri").to_pylist() == [str(tmp_path / "videos/1.mp4"), "/abs/2.mp4"]
    assert t.column("label").to_pylist() == ["real", "fake"]
    assert load_manifest(str(tmp_path / "m.csv"), split="test").num_rows == 1


@pytest.mark.parametrize("content, message", [
    ("video_id,label\nv1,real\n", "needs columns video_id and uri"),
    ("video_id,uri,label\nv1,a.mp4,maybe\n", "label 'maybe'"),
    ("video_id,uri,label\nv1,a.mp4,real\nv1,b.mp4,real\n", "appears in rows 0 and 1"),
    ("video_id,uri,split\nv1,a.mp4,holdout\n", "split 'holdout'"),
])
def test_malformed_manifest_fails_fast_naming_the_cause(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(ManifestError, match=message):
        load_manifest(str(p))


def test_missing_manifest_and_empty_folder(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(str(tmp_path / "gone.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no video files"):
        load_manifest(str(tmp_path / "empty"))


def test_parquet_manifest_round_trip(tmp_path):
    t = manifest_table([dict(video_id="a", uri="/x/a.mp4", label="real")])
    import pyarrow.parquet as pq

    pq.write_table(t, tmp_path / "m.parquet")
    assert load_manifest(str(tmp_path / "m.parquet")).equals(t)
    assert isinstance(t, pa.Table) and t.column("split").to_pylist() == ["unknown"]


def test_a_header_only_manifest_fails_instead_of_running_no_video(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("video_id,uri,label,dataset,method,split\n")
    with pytest.raises(ManifestError, match=f"{p}: the manifest lists no videos"):
        load_manifest(str(p))
    (tmp_path / "m.csv").write_text("video_id,uri,label,dataset,method,split\nv1,a.mp4,real,d,original,train\n")
    with pytest.raises(ManifestError, match="no video of split 'test'"):
        load_manifest(str(tmp_path / "m.csv"), split="test")


def test_a_folders_manifest_wins_and_the_files_it_leaves_out_are_counted(tmp_path, capsys):
    import pyarrow.parquet as pq

    for rel in ("real/a.mp4", "real/b.mp4", "real/new.mp4"):
        (tmp_path / "ds" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / rel).write_bytes(b"x")
    rows = [dict(video_id=v, uri=f"real/{v}.mp4", label="real") for v in ("a", "b")]
    pq.write_table(manifest_table(rows), tmp_path / "ds" / "manifest.parquet")
    t = load_manifest(str(tmp_path / "ds"))
    assert t.column("video_id").to_pylist() == ["a", "b"]
    out = capsys.readouterr().out
    assert "1 video file(s) under" in out and out.strip().endswith("new.mp4")


def test_a_numeric_label_is_refused_not_read_as_unknown(tmp_path):
    import pyarrow.parquet as pq

    for label in (0, 1, True):
        path = str(tmp_path / f"m{label!r}.parquet")
        pq.write_table(pa.table({"video_id": ["a"], "uri": ["a.mp4"], "label": [label]}), path)
        with pytest.raises(ManifestError, match=f"has label {label!r}; expected one of real, fake, unknown"):
            load_manifest(path)


def test_one_file_under_several_ids_is_refused_when_they_disagree_and_warned_otherwise(tmp_path, capsys):
    rows = [dict(video_id=f"id{i}", uri="/data/x.mp4", label=label, split=split)
            for i, (label, split) in enumerate((("real", "train"), ("fake", "test"), ("real", "test")))]
    with pytest.raises(ManifestError, match=r"/data/x.mp4 is listed as 3 videos with different labels or splits "
                                            r"\(id0: real/train; id1: fake/test; id2: real/test\)"):
        manifest_table(rows, "m.csv")
    manifest_table([dict(r, label="real", split="test") for r in rows], "m.csv")
    assert "1 file(s) listed under several video ids" in capsys.readouterr().out


def test_a_folder_holding_a_non_utf8_file_name_fails_in_one_line_naming_it(tmp_path):
    import os

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "ok.mp4").write_bytes(b"")
    open(os.path.join(os.fsencode(str(tmp_path / "real")), b"caf\xe9.mp4"), "wb").close()
    with pytest.raises(ManifestError, match=r"real/caf\\xe9.mp4: the file name is not valid UTF-8; rename it"):
        load_manifest(str(tmp_path))
