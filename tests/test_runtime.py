"""The local Ray a stage starts: reachable from this machine only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run in a fresh process: the stage's own local Ray, started by ray_session as every stage does,
# and the sockets its processes listen on (Linux /proc: inode -> pid, /proc/net/tcp{,6} -> address).
LISTENERS = r'''
import json, os, socket, struct, sys
from difffake_ray.config import RayConfig
from difffake_ray.runtime import ray_session

def address(hexaddr):
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *struct.unpack("<4I", raw))), int(port, 16)

def listeners():
    owner = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owner[link[8:-1]] = int(pid)
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/net/{table}") as fh:
            next(fh)
            for line in fh:
                f = line.split()
                if f[3] == "0A":  # LISTEN
                    found.append([*address(f[1]), owner.get(f[9])])
    return found

before = {(ip, port) for ip, port, _ in listeners()}
import ray
with ray_session(RayConfig(num_cpus=1)):
    ray.get(ray.remote(lambda: os.getpid()).remote())  # a worker process too
    opened = [l for l in listeners() if (l[0], l[1]) not in before]
    machine = socket.gethostbyname(socket.gethostname())  # this machine's network address
    reachable = []
    for ip, port, pid in opened:
        with socket.socket() as s:
            s.settimeout(2)
            if not machine.startswith("127.") and s.connect_ex((machine, port)) == 0:
                reachable.append(port)
    print(json.dumps({"opened": opened, "reachable": reachable}))
'''


def _loopback(ip: str) -> bool:
    return ip in ("127.0.0.1", "::1") or ip.startswith("127.") or ip.startswith("::ffff:127.")


def test_a_stages_local_ray_listens_on_loopback_only():
    done = subprocess.run([sys.executable, "-c", LISTENERS], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen["opened"]) >= 4, seen  # GCS, raylet, agents, the worker: the check saw them
    exposed = [l for l in seen["opened"] if not _loopback(l[0])]
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert seen["reachable"] == [], "a connection from the machine's network address was accepted"
