"""One writer per output folder, and one set of settings in it: what makes resuming safe.

A stage driver holds ``claim(out_uri, stage, settings, overwrite)`` while it writes:

- ``_lock.json`` (host, pid, run id, start time): a second writer fails fast, naming the holder.
  A lock left on this host by a process that is gone is taken over, with a note. On a local disk
  the lock is created exclusively; on an object store it is written and read back, so two runs
  started within the same moment could both pass: the check is for the common mistake, not a
  distributed mutex.
- ``_settings.json``: the settings that made the rows (the config keys that change the output,
  fingerprints of the input models). A rerun with other settings refuses, naming the keys that
  differ, unless ``overwrite``, which first removes what a stage wrote there (its part files,
  records, markers and temporaries) and nothing else: rows made two ways never mix, and a user's
  own files in the folder are kept.
- An output that is, holds or lies inside one of the stage's inputs is refused before anything is
  written or removed (``check_apart``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

from .. import storage
from ..runtime import CONFIG_RECORD, RUN_RECORD, interrupted_by, pid_alive
from .common import MANIFEST_RECORD
from .parts import DONE_DIR, ERRORS_DIR

LOCK_FILE = "_lock.json"
SETTINGS_FILE = "_settings.json"
# Every name a stage writes at the top of its output: what --overwrite may remove, and no other
STAGE_RECORDS = (RUN_RECORD, CONFIG_RECORD, SETTINGS_FILE, MANIFEST_RECORD, DONE_DIR, ERRORS_DIR)
PART_PREFIX, PARTITION_PREFIX = "part-", "dataset="


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


def overlap_key(uri: str) -> str:
    """``uri`` as compared for overlaps: absolute, symbolic links resolved, no trailing slash."""
    uri = storage.absolute(uri)
    if "://" in uri:
        return uri.rstrip("/")
    return os.path.realpath(uri)


def overlap(out_uri: str, input_uri: str) -> Optional[str]:
    """How ``out_uri`` overlaps ``input_uri`` ("is", "holds", "lies inside"), or None."""
    out, inp = overlap_key(out_uri), overlap_key(input_uri)
    if out == inp:
        return "is"
    if inp.startswith(out + "/"):
        return "holds"
    if out.startswith(inp + "/"):
        return "lies inside"
    return None


def check_apart(out_uri: str, inputs: Dict[str, Optional[str]]) -> None:
    """Refuse an output folder that is, holds or lies inside an input ({what: uri}): a rerun with
    --overwrite would otherwise delete or mix with what the stage reads."""
    for what, uri in inputs.items():
        how = overlap(out_uri, uri) if uri else None
        if how:
            raise OutputClaimError(f"{out_uri} {how} the {what} {uri}: write the output to a folder of its own, "
                                   f"apart from the stage's inputs")


def _stage_written(name: str) -> bool:
    return name in STAGE_RECORDS or name.startswith((PART_PREFIX, storage.TEMP_PREFIX))


def remove_stage_output(out_uri: str) -> List[str]:
    """Remove what a stage wrote under ``out_uri`` (part files, also inside ``dataset=`` partitions,
    records, markers, temporaries) and keep everything else. -> the paths kept (not the stage's)."""
    fs, path = storage.url_to_fs(out_uri)
    kept: List[str] = []
    for p in fs.ls(path, detail=False):
        name = os.path.basename(p.rstrip("/"))
        if name == LOCK_FILE:
            continue
        if _stage_written(name):
            fs.rm(p, recursive=True)
        elif name.startswith(PARTITION_PREFIX) and fs.isdir(p):
            for q in fs.ls(p, detail=False):
                if _stage_written(os.path.basename(q.rstrip("/"))):
                    fs.rm(q, recursive=True)
                else:
                    kept.append(q)
            if not fs.ls(p, detail=False):
                fs.rm(p, recursive=True)
        else:
            kept.append(p)
    return kept


def _read_settings(record: str) -> Dict[str, Any]:
    try:
        old = storage.read_json(record)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OutputClaimError(f"{record}: unreadable ({str(exc).splitlines()[0]}); rerun with --overwrite to redo "
                               f"the output, or write to another folder") from None
    if not isinstance(old, dict) or not isinstance(old.get("settings"), dict):
        raise OutputClaimError(f"{record}: not a settings record; rerun with --overwrite to redo the output, or "
                               f"write to another folder")
    return old


def _differences(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


def without_as_before(settings: Dict[str, Any], as_before: Dict[str, Any]) -> Dict[str, Any]:
    """``settings`` less those added after outputs were written without them and still at the value
    that does what those outputs did (``as_before``): such outputs keep resuming, and a setting
    set otherwise is recorded and checked."""
    return {k: v for k, v in settings.items() if not (k in as_before and v == as_before[k])}


@contextlib.contextmanager
def hold(out_uri: str, stage: str, inputs: Optional[Dict[str, Optional[str]]] = None,
         resumes: bool = False) -> Iterator[None]:
    """Hold ``out_uri`` for one run of ``stage``, reading ``inputs`` ({what: uri}, checked to lie
    apart from the output): one writer at a time, and an interrupted run says so in its record.
    Stages that write one artefact whole (fit, evaluate, bundle) take only this."""
    check_apart(out_uri, inputs or {})
    storage.makedirs(out_uri)
    lock = _take_lock(out_uri, stage)
    try:
        yield
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (runtime.StageInterrupted)
        storage.write_json_atomic(storage.join(out_uri, RUN_RECORD), {
            "stage": stage, "status": "interrupted", "cause": interrupted_by(), "output": out_uri,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": lock["host"], "pid": lock["pid"],
            "note": "partial output: a rerun resumes it" if resumes else "partial output: a rerun redoes it"})
        raise
    finally:
        with contextlib.suppress(Exception):
            lock_uri = storage.join(out_uri, LOCK_FILE)
            if storage.read_json(lock_uri).get("run") == lock["run"]:
                storage.remove(lock_uri)


@contextlib.contextmanager
def claim(out_uri: str, stage: str, settings: Dict[str, Any], overwrite: bool = False,
          inputs: Optional[Dict[str, Optional[str]]] = None) -> Iterator[None]:
    """``hold`` for a stage that writes part files and resumes: the output must have been made
    with ``settings`` (JSON-able), or be empty, or ``overwrite`` removes it."""
    with hold(out_uri, stage, inputs, resumes=True):
        record = storage.join(out_uri, SETTINGS_FILE)
        settings = json.loads(json.dumps(settings))  # as it will read back
        if overwrite:
            kept = remove_stage_output(out_uri)
            if kept:
                print(f"{stage}: --overwrite removed the stage's own files of {out_uri} and kept {len(kept)} it did "
                      f"not write, e.g. {kept[0]}", flush=True)
        elif storage.exists(record):
            old = _read_settings(record)
            if old.get("settings") != settings:
                raise OutputClaimError(
                    f"{out_uri} holds {stage} output made with other settings "
                    f"({_differences(old.get('settings', {}), settings)}); rerun with --overwrite to redo every "
                    f"video with the new ones, or write to another folder")
        elif storage.list_data_files(out_uri):
            raise OutputClaimError(
                f"{out_uri} holds rows but no {SETTINGS_FILE} saying what made them; rerun with --overwrite to redo "
                f"every video, or write to another folder")
        storage.write_json_atomic(record, {"stage": stage, "settings": settings})
        yield
