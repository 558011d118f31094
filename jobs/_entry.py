"""The shared body of the Ray Jobs entrypoints: run one ``cli.py`` stage as the job's driver.

``python jobs/<stage>.py [global options] -- [stage arguments]``. Inside a job, Ray sets
RAY_ADDRESS, so the stage attaches to the cluster instead of starting a local Ray; the config
resolved by ``cli.py submit`` arrives in DIFFFAKE_CONFIG_YAML.
"""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def run_stage(stage: str) -> None:
    argv = sys.argv[1:]
    if "--" in argv:
        cut = argv.index("--")
        global_args, stage_args = argv[:cut], argv[cut + 1:]
    else:
        global_args, stage_args = [], argv
    config_yaml = os.environ.get("DIFFFAKE_CONFIG_YAML")
    if config_yaml:
        fd, path = tempfile.mkstemp(prefix="difffake-config-", suffix=".yaml")
        with os.fdopen(fd, "w") as fh:
            fh.write(config_yaml)
        global_args = ["--config", path] + global_args
    from cli import main

    main(args=[*global_args, stage, *stage_args], prog_name=f"jobs/{stage}")
