"""Starting or attaching to Ray, and the run record every stage writes next to its output."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import time
from typing import Any, Dict, Iterator, Optional

from . import __version__, storage
from .config import Config, RayConfig, config_to_dict, dump_config


def init_ray(ray_cfg: RayConfig, runs_train: bool = False) -> bool:
    """Start a local Ray in-process (``address`` None) or attach to a cluster. Returns True when
    this call started Ray (the caller then owns its shutdown).

    RAY_ADDRESS (set by Ray Jobs for a job's driver, or by the user) counts as an address.
    ``runs_train``: a local Ray's workers get the set-up hook that quiets Ray Train.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: Dict[str, Any] = {"log_to_driver": True, "configure_logging": False}
    address = ray_cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        from .submission import enable_token_auth_for_driver

        enable_token_auth_for_driver()
        kwargs["address"] = address
    else:
        # "local" always starts a fresh instance: a stale ray_current_cluster file from an earlier
        # run would otherwise make ray.init() try to attach to a dead head and hang.
        loopback_only()
        # No dashboard: on a small machine its processes cost a training step up to a quarter of
        # its speed (bench/train.py --dashboard). Its state API is then absent, which Ray Train's
        # placement-group cleaner reports every second: quiet_local_workers silences that, in a
        # session that runs Ray Train. Only there: a job-wide runtime_env costs a fresh Ray's first
        # job 2.5-3 s of worker start-up (a 2-video extract: 8.7 s with it, 5.8-6.5 s without).
        kwargs.update(address="local", include_dashboard=False)
        if runs_train:
            kwargs["runtime_env"] = {"worker_process_setup_hook": "difffake_ray.runtime.quiet_local_workers",
                                     "env_vars": {"DIFFFAKE_VERBOSE": "1" if is_verbose() else "0"}}
        if ray_cfg.num_cpus:
            kwargs["num_cpus"] = ray_cfg.num_cpus
        if ray_cfg.num_gpus is not None:
            kwargs["num_gpus"] = ray_cfg.num_gpus
    ray.init(**kwargs)
    return True


# Ray's own switch for a single-machine Ray (its default on macOS and Windows): the node's address
# is the loopback one, and every process of the local Ray (GCS, raylet, agents, workers) binds it.
# ray.init(_node_ip_address="127.0.0.1") does not do this: Ray swaps a loopback address for the
# machine's, and its servers then listen on every interface.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> None:
    """Make the local Ray about to start reachable from this machine only: for this process (Ray
    reads the constant when it starts its node) and for the processes it starts (environment)."""
    from ray._private import ray_constants

    os.environ[SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def cluster_addressing() -> None:
    """Undo ``loopback_only`` once the local Ray is down: a later attach to a cluster from this
    process must report the machine's address, not the loopback one."""
    from ray._private import ray_constants

    os.environ.pop(SINGLE_MACHINE_ENV, None)
    ray_constants.ENABLE_RAY_CLUSTER = ray_constants.env_bool(SINGLE_MACHINE_ENV, not ray_constants.IS_WINDOWS_OR_OSX)


def quiet_local_workers() -> None:
    """Worker set-up hook of the local Ray (started without a dashboard, on purpose): its state API
    is absent, which Ray Train's placement-group cleaner would report every second; and, unless
    verbose, Ray Train's INFO lines (worker group start-up) stay out of the driver's output."""
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)
    if not is_verbose():
        _quiet_loggers()
        try:  # Ray Train logs every report under its file's path, outside its LoggingConfig
            from ray.train.v2._internal.execution import context as train_context

            logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
        except ImportError:
            pass


# Output like a tool's: one progress bar and one summary line per stage. Ray's own INFO lines, its
# token-auth notice and the core worker's actor-restart caveat (Ray Data's actor pools always keep
# their constructor arguments in the object store) show only with -v.
_VERBOSE = False
NATIVE_NOISE = (b"has constructor arguments in the object store",)
QUIET_LOGGERS = {"ray": logging.WARNING, "ray.data": logging.WARNING, "ray.train": logging.WARNING,
                 "ray.tune": logging.WARNING, "ray._private.authentication.authentication_token_setup": logging.ERROR,
                 # "progress bars disabled": the stage draws its own
                 "ray.data._internal.progress": logging.ERROR}


def set_verbose(verbose: bool) -> None:
    global _VERBOSE
    _VERBOSE = bool(verbose)


def is_verbose() -> bool:
    return _VERBOSE or os.environ.get("DIFFFAKE_VERBOSE") == "1"


@contextlib.contextmanager
def quiet_native_stderr(noise=NATIVE_NOISE) -> Iterator[None]:
    """Drop the lines of this process's fd 2 (where Ray's C++ core worker logs) that contain one of
    ``noise``; everything else, progress bars included, passes through as it comes."""
    import re
    import threading

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (captured by a test runner): nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        pending = b""
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            pending += chunk
            pieces = re.split(rb"(?<=[\r\n])", pending)  # keep each \r or \n with its piece
            pending = pieces.pop() if not pieces[-1].endswith((b"\n", b"\r")) else b""
            out = b"".join(p for p in pieces if not any(n in p for n in noise))
            if out:
                os.write(saved, out)
        if pending:
            os.write(saved, pending)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        thread.join(timeout=5)
        os.close(read_end)
        os.close(saved)


def _quiet_loggers() -> None:
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def _quiet_ray_logging() -> None:
    # Ray Data re-applies its own logging config (INFO to the console) per dataset unless told
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    _quiet_loggers()
    try:
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False  # the stage draws its own bar
        ctx.print_on_execution_start = False
    except (ImportError, AttributeError):
        pass


_LAST_SIGNAL = None  # what the stage's signal handler last received


def interrupted_by() -> str:
    """The signal that interrupted this process's stage: Ray's own code may re-raise the
    interruption as a bare KeyboardInterrupt, so the handler records what it received."""
    return _LAST_SIGNAL or "SIGINT"


class StageInterrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) during a stage: unwinds like Ctrl-C, so that every ``finally`` runs (the
    local Ray is shut down with its agents, the output's lock released, the run record says so)."""


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM raises StageInterrupted in the main thread. Installed after ray.init, it replaces
    Ray's native handler, which would print a C++ stack dump and leave no record."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame):
        global _LAST_SIGNAL
        _LAST_SIGNAL = signal.Signals(signum).name
        raise StageInterrupted(_LAST_SIGNAL)

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# Each local Ray this project starts is recorded (driver pid, session folder) until it is shut
# down: a driver killed with SIGKILL cannot stop its Ray, and the next start stops what it left.
LOCAL_RAY_RECORDS = os.path.join(os.path.expanduser("~"), ".cache", "difffake-ray", "local-ray")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_of_session(session_dir: str) -> list:
    """Pids whose command line names ``session_dir`` or that hold a file under it open (Linux /proc;
    elsewhere none are found). Ray's agents rename themselves (``ray::DashboardAgent``) and outlive
    a SIGKILLed driver; their open logs under the session folder still name them."""
    found = []
    if not os.path.isdir("/proc") or not session_dir:
        return found
    prefix = session_dir.rstrip("/") + "/"
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if session_dir.encode() in fh.read():
                        found.append(int(entry))
                        continue
                fds = f"/proc/{entry}/fd"
                if any(_readlink(os.path.join(fds, fd)).startswith(prefix) for fd in os.listdir(fds)):
                    found.append(int(entry))
            except OSError:  # gone, or another user's
                continue
    return found


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def stop_stale_local_rays() -> int:
    """Stop the processes of local Rays whose driver is gone; say so. Returns how many."""
    import json
    import signal

    if not os.path.isdir(LOCAL_RAY_RECORDS):
        return 0
    stopped = 0
    for name in os.listdir(LOCAL_RAY_RECORDS):
        path = os.path.join(LOCAL_RAY_RECORDS, name)
        try:
            with open(path) as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue
        if pid_alive(int(record.get("driver_pid", 0))):
            continue
        pids = _processes_of_session(record.get("session_dir", ""))
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if pids:
            print(f"difffake-ray: stopped {len(pids)} process(es) of a local Ray left by driver pid "
                  f"{record['driver_pid']} ({record.get('session_dir')})", file=sys.stderr, flush=True)
        stopped += len(pids)
        with contextlib.suppress(OSError):
            os.remove(path)
    return stopped


def _record_local_ray() -> Optional[str]:
    import json

    import ray

    try:
        session_dir = ray._private.worker._global_node.get_session_dir_path()
    except AttributeError:  # Ray's internals moved: no record, nothing to clean later
        return None
    os.makedirs(LOCAL_RAY_RECORDS, exist_ok=True)
    path = os.path.join(LOCAL_RAY_RECORDS, f"{os.getpid()}.json")
    with open(path, "w") as fh:
        json.dump({"driver_pid": os.getpid(), "session_dir": session_dir, "started": time.time()}, fh)
    return path


@contextlib.contextmanager
def ray_session(ray_cfg: RayConfig, runs_train: bool = False) -> Iterator[None]:
    """Ray for a stage: the running one, or a local one started (and shut down) here, or the
    cluster at ``ray.address``. ``runs_train``: the session runs Ray Train (its workers then get
    the set-up hook that keeps them quiet)."""
    import ray

    quiet = not is_verbose() and not ray.is_initialized()
    if quiet:
        _quiet_ray_logging()
    local = not ray.is_initialized() and not (ray_cfg.address or os.environ.get("RAY_ADDRESS"))
    if local:
        stop_stale_local_rays()
    with (quiet_native_stderr() if quiet else contextlib.nullcontext()):
        started = init_ray(ray_cfg, runs_train)
        record = _record_local_ray() if started and local else None
        try:
            with _signals_interrupt():
                yield
        finally:
            if started:
                ray.shutdown()  # a driver's disconnect when attached; the local instance's end otherwise
                if local:
                    cluster_addressing()
            if record:
                with contextlib.suppress(OSError):
                    os.remove(record)


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))


def cluster_cpus() -> float:
    import ray

    return float(ray.cluster_resources().get("CPU", 1.0))


# distribution names of what a run record reports (import names differ: cv2, av, sklearn)
RECORDED_PACKAGES = ("ray", "torch", "timm", "opencv-contrib-python-headless", "av", "scikit-learn", "pyarrow",
                     "numpy", "albumentations", "dlib-bin")


def versions() -> Dict[str, str]:
    """Installed versions, read from package metadata: importing torch and timm just to ask would
    cost every stage's driver about 5 s."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"difffake_ray": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for dist in RECORDED_PACKAGES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


RUN_RECORD = "_run.json"
CONFIG_RECORD = "_config.yaml"


def write_run_record(out_uri: str, stage: str, cfg: Config, inputs: Dict[str, Any],
                     counts: Dict[str, Any], started: float, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    record = {
        "stage": stage,
        "inputs": inputs,
        "output": out_uri,
        "counts": counts,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 3),
        "versions": versions(),
        "host": platform.node(),
        "pid": os.getpid(),
        "config": config_to_dict(cfg),
    }
    if extra:
        record.update(extra)
    storage.write_json_atomic(storage.join(out_uri, RUN_RECORD), record)
    storage.write_text_atomic(storage.join(out_uri, CONFIG_RECORD), dump_config(cfg))
    return record


def read_run_record(out_uri: str) -> Dict[str, Any]:
    return storage.read_json(storage.join(out_uri, RUN_RECORD))


# Beside a fitted anomaly model and a trained backbone: the videos each has seen. An honest
# evaluation leaves them out (a score of a video the model was fitted on says nothing of detection).
FITTED_VIDEOS = "_fitted_videos.parquet"
TRAINED_VIDEOS = "_trained_videos.parquet"


def write_seen_videos(out_uri: str, name: str, video_ids) -> None:
    import pyarrow as pa

    table = pa.table({"video_id": pa.array(sorted(set(video_ids)), pa.string())})
    storage.write_parquet_atomic(table, storage.join(out_uri, name))


def read_seen_videos(folder_uri: str, name: str) -> Optional[set]:
    """The video ids recorded in ``folder_uri/name``; None when there is no such record."""
    uri = storage.join(folder_uri, name)
    if not storage.exists(uri):
        return None
    return set(storage.read_parquet_files([uri], columns=["video_id"])["video_id"].to_pylist())
