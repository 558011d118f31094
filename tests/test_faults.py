"""Faults lose nothing: a Ray worker killed mid-job (extract, score, training), a driver killed
and started again. Every kill is by the victim's own pid, found from its process title; the output
then holds every video exactly once and equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pyarrow.compute as pc
import pytest

from difffake_ray import schema, storage
from difffake_ray.verify import verify_output
from tests.conftest import fast_config

pytestmark = pytest.mark.ray
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ray_workers(title: str) -> list:
    """Pids of this machine's processes whose title contains ``title`` (Ray sets ``ray::<Actor>``)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::") and title in cmd:
            found.append(p.info["pid"])
    return found


class Killer(threading.Thread):
    """Kills one process titled ``title`` once ``ready()`` holds, then stops."""

    def __init__(self, title: str, ready=lambda: True, timeout: float = 120):
        super().__init__(daemon=True)
        self.title, self.ready, self.timeout, self.killed = title, ready, timeout, None
        self.stop = threading.Event()

    def run(self):
        deadline = time.time() + self.timeout
        while not self.stop.is_set() and time.time() < deadline:
            pids = ray_workers(self.title) if self.ready() else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                self.killed = pids[0]
                return
            time.sleep(0.05)


def frame_keys(uri: str) -> list:
    t = storage.read_parquet_dir(uri, columns=["video_id", "frame_index", "status", "video_status"])
    return sorted(t.to_pylist(), key=lambda r: (r["video_id"], r["frame_index"] if r["frame_index"] is not None else -1))


def test_extract_survives_a_killed_worker(ray_local, corpus, faces, tmp_path):
    from difffake_ray.pipeline.extract import run_extract

    out = str(tmp_path / "faces")
    killer = Killer("ExtractAndWrite", ready=lambda: len(storage.list_data_files(out)) >= 1)
    killer.start()
    run_extract(corpus, out, fast_config(), progress=False)
    killer.stop.set()
    killer.join()
    assert killer.killed, "no extract worker was seen mid-job"
    report = verify_output(out)
    assert report["ok"], report["problems"]
    assert frame_keys(out) == frame_keys(faces)  # equals the uninterrupted run


def test_score_survives_a_killed_worker(ray_local, tmp_path):
    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.pipeline.score import run_score
    from tests.tables import read_scores
    from tests.conftest import toy_embeddings_table

    cfg = fast_config()
    cfg.fit.min_frame_gap = cfg.score.min_frame_gap = 1
    cfg.fit.n_components = 1
    table = toy_embeddings_table(n_videos=16)
    emb = str(tmp_path / "emb")
    for vid in sorted(set(table["video_id"].to_pylist())):  # one part per video: many tasks
        part = table.filter(pc.equal(table["video_id"], vid))
        storage.write_parquet_atomic(part, os.path.join(emb, f"part-{vid}.parquet"))
    run_fit(emb, str(tmp_path / "adm"), cfg)
    reference = str(tmp_path / "ref")
    run_score(emb, reference, str(tmp_path / "adm"), cfg, progress=False)

    out = str(tmp_path / "scores")
    killer = Killer("PartMapper")
    killer.start()
    run_score(emb, out, str(tmp_path / "adm"), cfg, progress=False)
    killer.stop.set()
    killer.join()
    assert killer.killed, "no score worker was seen mid-job"
    manifest = str(tmp_path / "manifest.parquet")
    storage.write_parquet_atomic(table.select(schema.MANIFEST_COLUMNS).group_by(schema.MANIFEST_COLUMNS)
                                 .aggregate([]).select(schema.MANIFEST_COLUMNS), manifest)
    report = verify_output(out, manifest)
    assert report["ok"], report["problems"]
    got, want = read_scores(out).sort_by("video_id"), read_scores(reference).sort_by("video_id")
    assert got.num_rows == 16 and got.equals(want)


def test_extract_driver_killed_and_restarted(ray_local, corpus, faces, tmp_path):
    """A driver (with its own local Ray) killed after some parts are written; the rerun completes
    the rest: no duplicates, nothing missing, equal to the uninterrupted run."""
    from difffake_ray.pipeline.extract import run_extract

    out = str(tmp_path / "faces")
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1")
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "--set", "extract.n_frames=8",
                               "--set", "extract.videos_per_file=2", "--set", "ray.num_cpus=1",
                               "extract", corpus, out], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and len(storage.list_data_files(out)) < 1 and driver.poll() is None:
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait(30)
    written = len(storage.list_data_files(out))
    assert 1 <= written < 8, f"{written} of 8 parts (one video each: a small corpus) written before the kill"
    # the rerun has twice the workers: it still cuts the rest into the killed run's parts, so a part
    # that run's last worker was still writing is replaced, not duplicated
    record = run_extract(corpus, out, fast_config(), progress=False)
    assert record["inputs"]["resumed_skipped"] == written
    report = verify_output(out)
    assert report["ok"], report["problems"]
    assert frame_keys(out) == frame_keys(faces)


def test_training_survives_a_killed_worker(ray_local, faces, tmp_path):
    from difffake_ray.config import load_config
    from difffake_ray.pipeline.train import RAY_RUN_NAME, run_train
    from tests.conftest import tiny_train_overrides

    run = str(tmp_path / "run")
    cfg = load_config(None, tiny_train_overrides(3))

    def first_checkpoint():
        root = os.path.join(run, RAY_RUN_NAME)
        return os.path.isdir(root) and any(d.startswith("checkpoint_") for d in os.listdir(root))

    killer = Killer("RayTrainWorker", ready=first_checkpoint, timeout=300)
    killer.start()
    record = run_train(faces, run, cfg)
    killer.stop.set()
    killer.join()
    assert killer.killed, "no training worker was seen after the first checkpoint"
    assert record["last_epoch"] == 2  # restarted from the checkpoint and finished every epoch
    assert os.path.exists(os.path.join(run, "best.pt"))


def test_embed_and_score_resume_an_interrupted_output(ray_local, faces, tmp_path):
    """What a killed driver leaves: some parts with their markers, a part without its marker, a
    half-written temporary. The rerun gives the uninterrupted table, each video once."""
    import shutil

    from difffake_ray.pipeline.fit import run_fit
    from difffake_ray.backbone import create_backbone, export_embedder
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.parts import DONE_DIR
    from difffake_ray.pipeline.score import run_score
    from tests.tables import read_scores
    from difffake_ray.preprocess import InputSpec

    cfg = fast_config()
    cfg.fit.min_frame_gap = cfg.score.min_frame_gap = 1
    backbone = str(tmp_path / "tiny.pt")
    tiny = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(tiny, backbone, "test_efficientnet", InputSpec.from_model(tiny, 64))
    emb, adm, scores = (str(tmp_path / d) for d in ("emb", "adm", "scores"))
    run_embed(faces, emb, backbone, cfg, progress=False)
    run_fit(emb, adm, cfg)
    run_score(emb, scores, adm, cfg, progress=False)
    order = [("video_id", "ascending"), ("frame_index", "ascending"), ("track", "ascending")]
    want_emb = storage.read_parquet_dir(emb).sort_by(order)
    want_scores = read_scores(scores).sort_by("video_id")

    for out, rerun in ((emb, lambda: run_embed(faces, emb, backbone, cfg, progress=False)),
                       (scores, lambda: run_score(emb, scores, adm, cfg, progress=False))):
        parts = storage.list_data_files(out)
        names = sorted({os.path.basename(p) for p in parts})
        for p in parts:  # the second half never happened ...
            if os.path.basename(p) in names[len(names) // 2:]:
                os.remove(p)
        markers = os.listdir(os.path.join(out, DONE_DIR))  # <part name>@<its input's signature>

        def remove_marker(name):
            for m in markers:
                if m.split("@")[0] == name and os.path.exists(os.path.join(out, DONE_DIR, m)):
                    os.remove(os.path.join(out, DONE_DIR, m))

        for name in names[len(names) // 2:]:
            remove_marker(name)
        remove_marker(names[0])  # ... one part was written, its marker not
        shutil.copy(parts[0], os.path.join(os.path.dirname(parts[0]), ".tmp-0123-" + names[0]))
        rerun()
        report = verify_output(out)
        assert report["ok"] and not report["warnings"], report
    got_emb = storage.read_parquet_dir(emb).sort_by(order)
    assert got_emb.equals(want_emb)
    assert read_scores(scores).sort_by("video_id").equals(want_scores)


def test_verify_finds_duplicates_and_missing_videos(faces, tmp_path):
    import shutil

    out = str(tmp_path / "faces")
    shutil.copytree(faces, out)
    report = verify_output(out)
    assert report["ok"], report["problems"]
    parts = storage.list_data_files(out)
    shutil.copy(parts[0], os.path.join(out, "part-copy.parquet"))
    report = verify_output(out)
    assert not report["ok"] and any("in 2 part files" in p for p in report["problems"])
    os.remove(os.path.join(out, "part-copy.parquet"))
    os.remove(parts[1])
    report = verify_output(out)
    assert any("missing from the output" in p for p in report["problems"])
    assert any("differ from the run record" in p for p in report["problems"])


def test_verify_finds_a_duplicated_frame_and_names_an_unreadable_part(faces, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = str(tmp_path / "faces")
    shutil.copytree(faces, out)
    parts = storage.list_data_files(out)
    t = pq.read_table(parts[0])
    pq.write_table(pa.concat_tables([t, t.slice(0, 1)]), parts[0])  # one frame twice, same part
    report = verify_output(out)
    assert any(p.endswith("1 duplicated frames, e.g. " + str((t["video_id"][0].as_py(), t["frame_index"][0].as_py(),
                                                          t["track"][0].as_py())))
               for p in report["problems"]), report["problems"]
    with open(parts[1], "r+b") as fh:  # truncated: the Parquet footer is gone
        fh.truncate(100)
    report = verify_output(out)
    assert any(p.startswith(f"{parts[1]}: unreadable part file") for p in report["problems"]), report["problems"]


def test_a_truncated_input_part_is_named_and_everything_else_is_embedded(ray_local, faces, tmp_path):
    """One corrupt faces part: the other parts are embedded, the stage names the bad file in one
    line and fails; once the part is restored a rerun completes it and verify passes."""
    import shutil

    from difffake_ray.backbone import create_backbone, export_embedder
    from difffake_ray.pipeline.embed import run_embed
    from difffake_ray.pipeline.parts import UnreadableInputError
    from difffake_ray.preprocess import InputSpec
    from difffake_ray.runtime import read_run_record

    src = str(tmp_path / "faces")
    shutil.copytree(faces, src)
    parts = storage.list_data_files(src)
    bad = parts[0]
    good_bytes = open(bad, "rb").read()
    with open(bad, "wb") as fh:  # the footer is gone: "Parquet magic bytes not found"
        fh.write(good_bytes[: len(good_bytes) // 2])
    backbone = str(tmp_path / "tiny.pt")
    tiny = create_backbone("test_efficientnet", pretrained=False, num_classes=1)
    export_embedder(tiny, backbone, "test_efficientnet", InputSpec.from_model(tiny, 32))
    emb = str(tmp_path / "emb")
    with pytest.raises(UnreadableInputError) as exc:
        run_embed(src, emb, backbone, fast_config(), progress=False)
    message = str(exc.value)
    assert "\n" not in message and bad in message and "unreadable part file" in message
    lost = set(storage.read_parquet_files([faces + "/" + os.path.basename(bad)], columns=["video_id"])["video_id"]
               .to_pylist())
    got = set(storage.read_parquet_dir(emb, columns=["video_id"])["video_id"].to_pylist())
    everything = set(storage.read_parquet_dir(faces, columns=["video_id"])["video_id"].to_pylist())
    assert got == everything - lost and lost
    assert read_run_record(emb)["unreadable_input_parts"][0]["part"] == bad
    assert any("missing from the output" in p for p in verify_output(emb)["problems"])

    with open(bad, "wb") as fh:
        fh.write(good_bytes)
    run_embed(src, emb, backbone, fast_config(), progress=False)
    assert set(storage.read_parquet_dir(emb, columns=["video_id"])["video_id"].to_pylist()) == everything
    assert verify_output(emb)["ok"]


def _start_extract(corpus, out, home):
    env = dict(os.environ, HOME=str(home))
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "--set", "extract.n_frames=8",
                             "--set", "extract.videos_per_file=1", "--set", "ray.num_cpus=1", "extract", corpus, out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    record = os.path.join(str(home), ".cache", "difffake-ray", "local-ray", f"{proc.pid}.json")
    deadline = time.time() + 120
    while not os.path.exists(record) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert os.path.exists(record), "the driver never recorded its local Ray"
    time.sleep(1.0)
    return proc, record


def test_sigterm_stops_the_stage_cleanly_and_sigkill_leftovers_are_stopped_next_time(corpus, tmp_path, monkeypatch):
    import json

    from difffake_ray import runtime

    out = str(tmp_path / "faces")
    proc, record = _start_extract(corpus, out, tmp_path / "home")
    session = json.load(open(record))["session_dir"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "*** SIGTERM received" not in err and "Traceback" not in err, err
    assert json.load(open(os.path.join(out, "_run.json")))["status"] == "interrupted"
    time.sleep(2)
    assert not os.path.exists(record) and runtime._processes_of_session(session) == []

    proc, record = _start_extract(corpus, str(tmp_path / "faces2"), tmp_path / "home")
    session = json.load(open(record))["session_dir"]
    proc.kill()  # SIGKILL: nothing of the driver runs, its Ray stays
    proc.communicate(timeout=60)
    assert runtime._processes_of_session(session), "expected leftover Ray processes after SIGKILL"
    monkeypatch.setattr(runtime, "LOCAL_RAY_RECORDS", os.path.dirname(record))
    assert runtime.stop_stale_local_rays() > 0
    time.sleep(1)
    assert runtime._processes_of_session(session) == [] and not os.path.exists(record)
