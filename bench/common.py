"""What every benchmark shares: one name for a result file, saying on what it was measured.

``result_stem("quality", "tf_efficientnet_lite0")`` ->
``bench/results/quality-tf_efficientnet_lite0-x86_64-2cpu-cpu-torch2.14.1`` (what was run, the
machine, the accelerator, the versions that move the figures); ``write_result`` adds the machine and
every recorded version inside the file.
"""

from __future__ import annotations

import json
import os
import platform
import re
from typing import Any, Dict

RESULTS_DIR = "bench/results"


def machine() -> str:
    """The CPU side: architecture and cores, e.g. ``x86_64-2cpu``."""
    return f"{platform.machine()}-{os.cpu_count()}cpu"


def accelerator() -> str:
    """``cpu`` or the GPUs, e.g. ``nvidia-h200x1`` (torch asked only when it is installed)."""
    try:
        import torch
    except ImportError:
        return "cpu"
    if not torch.cuda.is_available():
        return "cpu"
    name = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")
    return f"{name}x{torch.cuda.device_count()}"


def versions_tag() -> str:
    """The versions in a result's name: torch's (kernels, numerics); the others are inside."""
    from difffake_ray.runtime import versions

    return "torch" + versions()["torch"].split("+")[0].replace(" ", "_")


def result_stem(kind: str, *details: str) -> str:
    """``bench/results/<kind>-<details>-<machine>-<accelerator>-<versions>`` (no extension)."""
    parts = [kind, *[d for d in details if d], machine(), accelerator(), versions_tag()]
    return os.path.join(RESULTS_DIR, "-".join(re.sub(r"[^A-Za-z0-9_.=-]+", "_", p) for p in parts))


def write_result(stem: str, result: Dict[str, Any]) -> str:
    """Write ``result`` as ``<stem>.json`` with the machine and versions added; -> the path."""
    from difffake_ray.runtime import versions

    os.makedirs(os.path.dirname(stem), exist_ok=True)
    path = stem + ".json"
    with open(path, "w") as fh:
        json.dump(dict(result, bench_machine={"machine": machine(), "accelerator": accelerator(),
                                              "platform": platform.platform()}, bench_versions=versions()),
                  fh, indent=2, default=str)  # numpy scalars and the like, as text
    return path
