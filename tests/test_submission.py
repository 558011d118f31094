"""Ray Jobs submission helpers and the jobs/ entrypoints, without a cluster."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from difffake_ray import submission

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_entrypoint_arguments_are_quoted_never_interpreted():
    args = ["s3://b/emb dir", "--adm", "x'; rm -rf / #", "$(whoami)"]
    cmd = submission.entrypoint("score", args)
    assert shlex.split(cmd) == ["python", "-m", "jobs.run", "score", "--", *args]
    assert submission.entrypoint("run-all", []).startswith("python -m jobs.run run-all")
    with pytest.raises(submission.SubmissionError, match="unknown stage"):
        submission.entrypoint("rm", [])


def test_token_is_found_where_ray_looks_for_it(tmp_path, monkeypatch):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert submission.find_auth_token() is None and submission.auth_headers() == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert submission.find_auth_token() == "home-token"
    (tmp_path / "t").write_text("path-token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert submission.find_auth_token() == "path-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert submission.auth_headers() == {"Authorization": "Bearer env-token"}
    (tmp_path / "f").write_text("file-token")
    assert submission.find_auth_token(str(tmp_path / "f")) == "file-token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert submission.auth_headers() == {}


def test_runtime_env_ships_the_project_and_the_resolved_config():
    env = submission.runtime_env("extract:\n  n_frames: 12\n")
    assert env["working_dir"] == ROOT
    assert ".venv/" in env["excludes"] and "out/" in env["excludes"]
    assert env["env_vars"][submission.CONFIG_ENV].startswith("extract:")
    assert "pip" not in env
    pip = submission.runtime_env("", pip=True)["pip"]
    assert any(r.startswith("ray[") for r in pip) and not any("pytest" in r for r in pip)


def test_job_entrypoint_runs_the_stage_with_the_shipped_config(tmp_path):
    """What the job's driver runs: python -m jobs.run STAGE -- ARGS, config from the environment,
    from the job's working_dir (the checkout); a stage it does not know is refused in one line."""
    root = tmp_path / "FFIW10K"
    for rel in ("source/val/val_00000.mp4", "target/val/val_00000.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x00")
    env = dict(os.environ, **{submission.CONFIG_ENV: "corpus:\n  seed: 3\n"})
    out = tmp_path / "m.csv"
    done = subprocess.run([sys.executable, "-m", "jobs.run", "manifest", "--", "ffiw", str(root),
                           str(out)], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "2 videos" in done.stdout and out.read_text().count("\n") == 3
    # the shipped config is the one the stage loads: a wrong one fails before any work
    env[submission.CONFIG_ENV] = "extract:\n  n_framez: 12\n"
    bad = subprocess.run([sys.executable, "-m", "jobs.run", "manifest", "--", "ffiw", str(root),
                          str(tmp_path / "m2.csv")], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode != 0 and "n_framez" in bad.stderr and not (tmp_path / "m2.csv").exists()
    unknown = subprocess.run([sys.executable, "-m", "jobs.run", "rm", "--", "-rf"], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
    assert unknown.returncode != 0 and "the first argument is the stage" in unknown.stderr


def test_a_jobs_api_answering_500_is_one_line_naming_the_address(tmp_path):
    import http.server
    import json
    import threading

    class Failing(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            if self.path.startswith("/api/version"):  # the client's handshake passes
                body, code = json.dumps({"version": "4", "ray_version": "2.60.0", "ray_commit": "x",
                                         "session_name": "s"}).encode(), 200
            else:
                body, code = b"Internal Server Error", 500
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(submission.SubmissionError, match=rf"^the Ray Jobs API at {address} failed to submit "
                                                             rf"score: .*500"):
            submission.submit(address, "score", ["a", "b", "--adm", "c"], "seed: 0\n")
        with pytest.raises(submission.SubmissionError, match="failed to describe job raysubmit_1"):
            submission.job_info(address, "raysubmit_1")
        done = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "jobs", "status", "raysubmit_1",
                               "--address", address], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    finally:
        server.shutdown()
