"""A real Ray head (``ray start --head``) on loopback ports, a stage submitted to it with
``cli.py submit`` through the Jobs API with token authentication, and the head stopped by its own
process group (never ``ray stop``, which would stop every Ray on the machine by name)."""

from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 without a token): the server is up
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def ray_head():
    token = secrets.token_hex(16)
    dash = free_port()
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's unix sockets live there
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    # the head and its jobs use this venv's python, as an activated venv (or the image) would
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, PATH=BIN + os.pathsep + env.get("PATH", ""))
    cmd = [os.path.join(BIN, "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
           "--port", str(free_port()), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
           "--include-dashboard", "true", "--num-cpus", "2", "--temp-dir", temp, "--disable-usage-stats",
           "--ray-client-server-port", str(free_port()),
           # the agents' default ports are fixed: another Ray on this machine (the session's local
           # one, a benchmark's) holds them, and the head would answer "No available agent"
           "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
           "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]
    log = open(os.path.join(temp, "head.log"), "w")
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{dash}/api/version", 120)
        yield {"address": f"http://127.0.0.1:{dash}", "token": token, "pid": head.pid}
    finally:
        head.terminate()  # `ray start --block` shuts down what it started on SIGTERM
        try:
            head.wait(90)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(10)
        try:  # anything of ours still alive: the process group this head was started in
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def run_cli(args, token=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    if token:
        env["RAY_AUTH_TOKEN"] = token  # no RAY_AUTH_MODE: the CLI must send the token by itself
    return subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_submit_extract_to_a_real_head(ray_head, corpus, tmp_path):
    manifest = pq.read_table(os.path.join(corpus, "manifest.parquet")).to_pylist()[:3]
    m = tmp_path / "three videos.csv"  # a space in the path: arguments must travel unharmed
    with open(m, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(manifest[0]))
        w.writeheader()
        for r in manifest:
            w.writerow(dict(r, uri=os.path.join(corpus, r["uri"])))
    out = tmp_path / "faces out"

    denied = run_cli(["submit", "--address", ray_head["address"], "extract", str(m), str(out)], timeout=120)
    assert denied.returncode != 0 and "token" in (denied.stderr + denied.stdout).lower()

    done = run_cli(["--set", "extract.n_frames=4", "submit", "--address", ray_head["address"], "--follow",
                    "extract", str(m), str(out)], token=ray_head["token"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job_id = done.stdout.split("as job ")[1].split()[0]
    assert "SUCCEEDED" in done.stdout
    from difffake_ray import storage

    table = storage.read_parquet_dir(str(out), columns=["video_id", "video_status", "frame_index"])
    assert set(table["video_id"].to_pylist()) == {r["video_id"] for r in manifest}
    # every video of the job was extracted, 4 sampled frames each (a frame index per row, none null)
    assert set(table["video_status"].to_pylist()) == {"ok"}
    frames = [f for f in table["frame_index"].to_pylist()]
    assert None not in frames and len(frames) >= 4 * len(manifest)
    record = storage.read_json(os.path.join(str(out), "_run.json"))
    assert record["config"]["extract"]["n_frames"] == 4  # the config resolved by submit reached the job

    status = run_cli(["jobs", "status", job_id, "--address", ray_head["address"]], token=ray_head["token"])
    assert status.returncode == 0 and '"SUCCEEDED"' in status.stdout
    logs = run_cli(["jobs", "logs", job_id, "--address", ray_head["address"]], token=ray_head["token"])
    assert "extract: 3 videos" in logs.stdout
