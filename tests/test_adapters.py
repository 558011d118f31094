"""Each dataset adapter on a tiny tree laid out like the real dataset (names, metadata formats)."""

from __future__ import annotations

import json
import os

import pytest

from difffake_ray.datasets.adapters import DATASET_ADAPTERS
from difffake_ray.datasets.manifest import ManifestError, load_manifest


def touch(root, *rels):
    for rel in rels:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(b"\x00\x00\x00\x18ftypmp42")  # contents are not read by adapters


def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as fh:
        fh.write(text)


def by_id(table):
    return {r["video_id"]: r for r in table.to_pylist()}


def make_ffpp(root, compression="c23", methods=("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")):
    pairs = {"train": [["000", "003"]], "val": [["001", "002"]], "test": [["953", "974"]]}
    for split, ps in pairs.items():
        write(root, f"splits/{split}.json", json.dumps(ps))
        for a, b in ps:
            touch(root, *(f"original_sequences/youtube/{compression}/videos/{v}.mp4" for v in (a, b)))
            for m in methods:
                touch(root, *(f"manipulated_sequences/{m}/{compression}/videos/{x}_{y}.mp4" for x, y in ((a, b), (b, a))))


def test_every_named_dataset_has_an_adapter():
    assert set(DATASET_ADAPTERS.names()) >= {"ffpp", "faceshifter", "celebdf", "deeperforensics", "forgerynet",
                                             "dfdc", "dfdc_preview", "ffiw"}


def test_ffpp_official_splits_and_compression(tmp_path):
    root = str(tmp_path / "FaceForensics++")
    make_ffpp(root, "c40")
    t = load_manifest(root, adapter="ffpp", compression="c40")
    rows = by_id(t)
    assert t.num_rows == 6 + 4 * 2 * 3  # 6 originals; 4 methods x 2 directions x 3 pairs
    assert rows["FF++/c40/original/953"]["split"] == "test"
    assert rows["FF++/c40/original/953"]["label"] == "real"
    assert rows["FF++/c40/Deepfakes/974_953"] == dict(rows["FF++/c40/Deepfakes/974_953"], label="fake",
                                                      method="Deepfakes", split="test")
    assert rows["FF++/c40/FaceSwap/000_003"]["split"] == "train"
    assert not any(r["method"] == "FaceShifter" for r in rows.values())
    test = load_manifest(root, adapter="ffpp", split="test", compression="c40", methods="Deepfakes")
    assert sorted(test["method"].to_pylist()) == ["Deepfakes", "Deepfakes", "original", "original"]
    assert all(os.path.exists(u) for u in test["uri"].to_pylist())
    # c0 is FF++'s "raw" folder
    make_ffpp(root, "raw", methods=("Deepfakes",))
    assert load_manifest(root, adapter="ffpp", compression="c0", methods="Deepfakes").num_rows == 12


def test_ffpp_without_split_files_fails_only_when_a_split_is_asked(tmp_path):
    root = str(tmp_path / "ff")
    make_ffpp(root)
    for f in ("train", "val", "test"):
        os.remove(os.path.join(root, "splits", f"{f}.json"))
    assert set(load_manifest(root, adapter="ffpp")["split"].to_pylist()) == {"unknown"}
    with pytest.raises(ManifestError, match="split files"):
        load_manifest(root, adapter="ffpp", split="test")
    with pytest.raises(ManifestError, match="unknown option"):
        load_manifest(root, adapter="ffpp", compresion="c23")


def test_faceshifter_uses_ffpp_originals_and_splits(tmp_path):
    root = str(tmp_path / "ff")
    make_ffpp(root)
    t = load_manifest(root, adapter="faceshifter", split="test")
    assert sorted(t["method"].to_pylist()) == ["FaceShifter", "FaceShifter", "original", "original"]
    assert set(t["dataset"].to_pylist()) == {"FaceShifter"}


def test_celebdf_test_list(tmp_path):
    root = str(tmp_path / "Celeb-DF-v2")
    touch(root, "Celeb-real/id0_0000.mp4", "Celeb-real/id1_0001.mp4", "YouTube-real/00170.mp4",
          "Celeb-synthesis/id0_id16_0000.mp4", "Celeb-synthesis/id1_id0_0003.mp4")
    write(root, "List_of_testing_videos.txt",
          "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id16_0000.mp4\n1 Celeb-real/id0_0000.mp4\n")
    rows = by_id(load_manifest(root, adapter="celebdf"))
    assert len(rows) == 5
    assert rows["Celeb-DF-v2/Celeb-synthesis/id0_id16_0000"]["split"] == "test"
    assert rows["Celeb-DF-v2/Celeb-synthesis/id1_id0_0003"]["split"] == "train"
    assert rows["Celeb-DF-v2/YouTube-real/00170"]["label"] == "real"
    test = load_manifest(root, adapter="celebdf", split="test")
    assert sorted(test["label"].to_pylist()) == ["fake", "real", "real"]
    write(root, "List_of_testing_videos.txt", "real YouTube-real/00170.mp4\n")
    with pytest.raises(ManifestError, match="line 1"):
        load_manifest(root, adapter="celebdf")


def test_deeperforensics_with_ffpp_reals(tmp_path):
    ff = str(tmp_path / "ff")
    make_ffpp(ff, methods=())
    root = str(tmp_path / "DeeperForensics-1.0")
    touch(root, "manipulated_videos/end_to_end/953_M101.mp4", "manipulated_videos/end_to_end/000_M030.mp4",
          "manipulated_videos/end_to_end_level_3/953_M101.mp4", "source_videos/M101/BlendShape/camera_front/x.mp4")
    write(root, "lists/splits/test.txt", "953_M101.mp4\n")
    write(root, "lists/splits/train.txt", "000_M030.mp4\n")
    t = load_manifest(root, adapter="deeperforensics", split="test", ffpp_root=ff)
    rows = by_id(t)
    assert rows["DF1.0/manipulated_videos/end_to_end/953_M101"]["label"] == "fake"
    assert sorted(t["label"].to_pylist()) == ["fake", "real", "real"]  # FF++ test originals 953, 974
    assert set(t["dataset"].to_pylist()) == {"DF1.0"}
    level3 = load_manifest(root, adapter="deeperforensics", variant="end_to_end_level_3")
    assert level3["method"].to_pylist() == ["end_to_end_level_3"]


FN_LINE_FAKE = "1 {name} 0 100 fake 1 2 {cls}"
FN_LINE_REAL = "0 {name} 0 0 0"


def test_forgerynet_480_protocol_sampling(tmp_path):
    root = str(tmp_path / "ForgeryNet")
    lines = []
    for cls in (1, 2, 3):
        for i in range(5):
            name = f"val_video_release/{cls}/v{cls}_{i:03d}.mp4"
            touch(root, f"Validation/video/{name}")
            lines.append(FN_LINE_FAKE.format(name=name, cls=cls))
    for i in range(4):
        name = f"val_video_release/real/r_{i:03d}.mp4"
        touch(root, f"Validation/video/{name}")
        lines.append(FN_LINE_REAL.format(name=name))
    write(root, "Validation/video_list.txt", "\n".join(lines) + "\n")
    t = load_manifest(root, adapter="forgerynet", split="val", per_method=3, seed=1)
    counts = {m: t["method"].to_pylist().count(m) for m in set(t["method"].to_pylist())}
    assert counts == {"method_01": 3, "method_02": 3, "method_03": 3, "original": 3}
    assert all(os.path.exists(u) for u in t["uri"].to_pylist())  # resolved under Validation/video/
    again = load_manifest(root, adapter="forgerynet", split="val", per_method=3, seed=1)
    assert again.equals(t)  # seeded
    assert load_manifest(root, adapter="forgerynet", split="val", per_method=0).num_rows == 19
    write(root, "keep.txt", "val_video_release/2/v2_004.mp4\nval_video_release/real/r_001.mp4\n")
    chosen = load_manifest(root, adapter="forgerynet", split="val", video_list=os.path.join(root, "keep.txt"))
    assert sorted(chosen["label"].to_pylist()) == ["fake", "real"]
    write(root, "Validation/video_list.txt", "2 broken.mp4 0 10 fake 1 1 1\n")
    with pytest.raises(ManifestError, match="line 1"):
        load_manifest(root, adapter="forgerynet", split="val")


def test_dfdc_metadata_and_test_labels(tmp_path):
    root = str(tmp_path / "dfdc")
    touch(root, "dfdc_train_part_0/aaqaifqrwn.mp4", "dfdc_train_part_0/abarnvbtwb.mp4", "test/aalscayrfi.mp4")
    write(root, "dfdc_train_part_0/metadata.json", json.dumps({
        "aaqaifqrwn.mp4": {"label": "FAKE", "split": "train", "original": "abarnvbtwb.mp4"},
        "abarnvbtwb.mp4": {"label": "REAL", "split": "train", "original": None}}))
    write(root, "test/labels.csv", "filename,label\naalscayrfi.mp4,1\n")
    rows = by_id(load_manifest(root, adapter="dfdc"))
    assert rows["DFDC/dfdc_train_part_0/aaqaifqrwn"]["label"] == "fake"
    assert rows["DFDC/dfdc_train_part_0/abarnvbtwb"] == dict(rows["DFDC/dfdc_train_part_0/abarnvbtwb"],
                                                             label="real", split="train")
    assert rows["DFDC/test/aalscayrfi"]["split"] == "test" and rows["DFDC/test/aalscayrfi"]["label"] == "fake"


def test_dfdc_preview_dataset_json(tmp_path):
    root = str(tmp_path / "dfdc_preview")
    entries = {"method_A/1061268/1061268_A_001/1061268_A_001_A.mp4": {"label": "fake", "set": "test"},
               "method_B/1224068/1224068_C_001/1224068_C_001_B.mp4": {"label": "fake", "set": "train"},
               "original_videos/1061268/1061268_A_001.mp4": {"label": "real", "set": "test"}}
    touch(root, *entries)
    write(root, "dataset.json", json.dumps(entries))
    t = load_manifest(root, adapter="dfdc_preview", split="test")
    assert sorted(zip(t["label"].to_pylist(), t["method"].to_pylist())) == [("fake", "method_A"), ("real", "original")]


def test_ffiw_source_and_target(tmp_path):
    root = str(tmp_path / "FFIW10K-v1-release")
    touch(root, "source/train/train_00000.mp4", "target/train/train_00000.mp4", "source/val/val_00000.mp4",
          "target/val/val_00000.mp4", "test/source/test_00000.mp4", "test/target/test_00000.mp4")
    t = load_manifest(root, adapter="ffiw")
    rows = by_id(t)
    assert t.num_rows == 6 and len(rows) == 6
    assert rows["FFIW/target/val/val_00000"]["label"] == "fake"
    assert rows["FFIW/test/source/test_00000"] == dict(rows["FFIW/test/source/test_00000"], label="real", split="test")


def test_adapter_on_an_empty_folder_names_the_layout(tmp_path):
    with pytest.raises(ManifestError, match="expected layout"):
        load_manifest(str(tmp_path), adapter="ffiw")
