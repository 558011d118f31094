"""Starting or attaching to Ray, and the run record every stage writes next to its output."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from typing import Any, Dict, Iterator, Optional

from . import __version__, storage
from .config import Config, RayConfig, config_to_dict, dump_config


def init_ray(ray_cfg: RayConfig) -> bool:
    """Start a local Ray in-process (``address`` None) or attach to a cluster. Returns True when
    this call started Ray (the caller then owns its shutdown).

    RAY_ADDRESS (set by Ray Jobs for a job's driver, or by the user) counts as an address.
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
        # Loopback only: a local run opens no port that another machine can reach.
        # No dashboard: on a small machine its processes cost a training step up to a quarter of
        # its speed (bench/train.py --dashboard). Its state API is then absent, which Ray Train's
        # placement-group cleaner reports every second: quiet_local_workers silences that.
        kwargs.update(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                      runtime_env={"worker_process_setup_hook": "difffake_ray.runtime.quiet_local_workers"})
        if ray_cfg.num_cpus:
            kwargs["num_cpus"] = ray_cfg.num_cpus
        if ray_cfg.num_gpus is not None:
            kwargs["num_gpus"] = ray_cfg.num_gpus
    ray.init(**kwargs)
    return True


def quiet_local_workers() -> None:
    """Worker set-up hook of the local Ray (started without a dashboard, on purpose)."""
    import logging

    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(ray_cfg: RayConfig) -> Iterator[None]:
    import ray

    started = init_ray(ray_cfg)
    try:
        yield
    finally:
        if started:
            ray.shutdown()  # a driver's disconnect when attached; the local instance's end otherwise


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
