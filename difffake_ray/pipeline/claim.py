"""One writer per output folder, and one set of settings in it: what makes resuming safe.

A stage driver holds ``claim(out_uri, stage, settings, overwrite)`` while it writes:

- ``_lock.json`` (host, pid, run id, start time): a second writer fails fast, naming the holder.
  A lock left on this host by a process that is gone is taken over, with a note. On a local disk
  the lock is created exclusively; on an object store it is written and read back, so two runs
  started within the same moment could both pass: the check is for the common mistake, not a
  distributed mutex.
- ``_settings.json``: the settings that made the rows (the config keys that change the output,
  fingerprints of the input models). A rerun with other settings refuses, naming the keys that
  differ, unless ``overwrite``, which empties the folder first: rows made two ways never mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from typing import Any, Dict, Iterator

from .. import storage
from ..runtime import RUN_RECORD, interrupted_by, pid_alive

LOCK_FILE = "_lock.json"
SETTINGS_FILE = "_settings.json"


class OutputClaimError(ValueError):
    """The output folder is being written by another run, or holds rows made with other settings."""


def _take_lock(out_uri: str, stage: str) -> Dict[str, Any]:
    mine = {"stage": stage, "host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    lock = storage.join(out_uri, LOCK_FILE)
    fs, path = storage.url_to_fs(lock)
    for _ in range(2):
        if fs.exists(path):
            try:
                held = storage.read_json(lock)
            except (ValueError, FileNotFoundError):
                held = {}
            if held.get("host") == mine["host"] and held.get("pid") and not pid_alive(int(held["pid"])):
                print(f"{stage}: taking over {lock}: its run (pid {held['pid']}, {held.get('started')}) is gone",
                      flush=True)
                fs.rm(path)
            else:
                raise OutputClaimError(
                    f"{out_uri} is being written by another run ({held.get('stage')}, pid {held.get('pid')} on "
                    f"{held.get('host')}, since {held.get('started')}); wait for it, or delete {lock} if that run "
                    f"is gone")
        if storage.is_remote(out_uri):
            storage.write_json_atomic(lock, mine)
        else:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue  # another run took it between our check and our create: report it
            with os.fdopen(fd, "w") as fh:
                json.dump(mine, fh)
        if storage.read_json(lock).get("run") == mine["run"]:
            return mine
    raise OutputClaimError(f"{out_uri}: another run took {lock} at the same moment; rerun when it is done")


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


@contextlib.contextmanager
def claim(out_uri: str, stage: str, settings: Dict[str, Any], overwrite: bool = False) -> Iterator[None]:
    """Hold ``out_uri`` for one run of ``stage`` made with ``settings`` (JSON-able)."""
    storage.makedirs(out_uri)
    lock = _take_lock(out_uri, stage)
    try:
        record = storage.join(out_uri, SETTINGS_FILE)
        settings = json.loads(json.dumps(settings))  # as it will read back
        if overwrite:
            fs, path = storage.url_to_fs(out_uri)
            for p in fs.ls(path, detail=False):
                if os.path.basename(p.rstrip("/")) != LOCK_FILE:
                    fs.rm(p, recursive=True)
        elif storage.exists(record):
            old = storage.read_json(record)
            if old.get("settings") != settings:
                raise OutputClaimError(
                    f"{out_uri} holds {stage} output made with other settings "
                    f"({_differences(old.get('settings', {}), settings)}); rerun with --overwrite to redo every "
                    f"video with the new ones, or write to another folder")
        storage.write_json_atomic(record, {"stage": stage, "settings": settings})
        try:
            yield
        except KeyboardInterrupt:  # SIGINT, or SIGTERM (runtime.StageInterrupted)
            storage.write_json_atomic(storage.join(out_uri, RUN_RECORD), {
                "stage": stage, "status": "interrupted", "cause": interrupted_by(), "output": out_uri,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": lock["host"], "pid": lock["pid"],
                "note": "partial output: a rerun resumes it"})
            raise
    finally:
        with contextlib.suppress(Exception):
            lock_uri = storage.join(out_uri, LOCK_FILE)
            if storage.read_json(lock_uri).get("run") == lock["run"]:
                storage.remove(lock_uri)
