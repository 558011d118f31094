"""python -m bench.gpu --dry-run: every section of the GPU measurement runs on CPU (tiny sizes, Lite0), so
the script cannot rot between the days a GPU is lent."""

import json
import math
import os


def test_gpu_bench_dry_run_measures_every_section_on_cpu(ray_local, tmp_path):
    from bench import gpu as bench

    result = bench.main(["--dry-run", "--results-dir", str(tmp_path / "results"), "--workdir", str(tmp_path / "work")])
    sections = result["sections"]
    for name in ("model", "precision", "sam_step", "embed_stage", "extract", "decode", "gmm"):
        assert "error" not in sections[name] and "skipped" not in sections[name], (name, sections[name])
    assert sections["quality"] == {"skipped": "dry run"}
    assert len(sections["model"]["rows"]) == 4 and all(r["images_per_s"] > 0 for r in sections["model"]["rows"])
    lite0 = sections["precision"]["tf_efficientnet_lite0"]
    assert all(math.isfinite(lite0[k]) and lite0[k] >= 0 for k in lite0 if k.endswith("_rel_error_p95"))
    assert sections["sam_step"]["ray_train_1_worker"]["images_per_s"] > 0
    assert sections["embed_stage"]["pipeline_crops_per_s"] > 0 and sections["extract"]["videos_per_s_per_core"] > 0
    assert sections["gmm"]["max_relative_difference"] < 1e-3  # the device scorer agrees with scikit-learn
    nvdec = sections["decode"]["nvdec"]  # unavailable on a CPU machine, measured where a GPU is
    assert sections["decode"]["software"]["frames_per_video"] == 40 and ("skipped" in nvdec
                                                                        or nvdec["frames_per_video"] == 40)
    written = sorted(os.listdir(tmp_path / "results"))
    assert [f for f in written if f.endswith(".json")] and [f for f in written if f.endswith(".md")]
    saved = json.loads((tmp_path / "results" / [f for f in written if f.endswith(".json")][0]).read_text())
    assert saved["table_markdown"] == result["table_markdown"] and "| GMM log-likelihood" in saved["table_markdown"]


def test_decode_section_compares_frames_when_hardware_decoding_runs(tmp_path, monkeypatch):
    """No GPU here: NVDEC is stood in for by PyAV's plain software decode (``hwaccel=None``), so the
    comparison that a GPU machine will make runs end to end, and a full sequential decode must give
    the very frames of the extract stage's reader (which skips frames nothing is predicted from)."""
    from bench import gpu as bench

    monkeypatch.setattr(bench, "nvdec", lambda: None)
    args = bench.parse_args(["--dry-run", "--workdir", str(tmp_path)])
    result = bench.section_decode(args, None, None)
    assert result["nvdec"]["frames_per_video"] == result["software"]["frames_per_video"] == 40
    assert result["frames_identical"] == 1.0 and result["max_abs_difference"] == 0
    assert result["software"]["cpu_s_per_video"] > 0 and "cpu_saved_s_per_video" in result
