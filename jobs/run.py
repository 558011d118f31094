"""The Ray Jobs entrypoint: run one ``cli.py`` stage as the job's driver.

``python -m jobs.run STAGE [global options] -- [stage arguments]``, from the job's working_dir
(this checkout, ``jobs/runtime_env.yaml``): ``-m`` puts it on the import path. Inside a job, Ray
sets RAY_ADDRESS, so the stage attaches to the cluster instead of starting a local Ray; the config
resolved by ``cli.py submit`` arrives in DIFFFAKE_CONFIG_YAML.
"""

from __future__ import annotations

import os
import sys
import tempfile

from difffake_ray.submission import CONFIG_ENV, STAGES


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in STAGES:
        raise SystemExit(f"jobs.run: the first argument is the stage, one of {', '.join(STAGES)}")
    stage, rest = argv[0], argv[1:]
    if "--" in rest:
        cut = rest.index("--")
        global_args, stage_args = rest[:cut], rest[cut + 1:]
    else:
        global_args, stage_args = [], rest
    config_yaml = os.environ.get(CONFIG_ENV)
    if config_yaml:
        fd, path = tempfile.mkstemp(prefix="difffake-config-", suffix=".yaml")
        with os.fdopen(fd, "w") as fh:
            fh.write(config_yaml)
        global_args = ["--config", path] + global_args
    from cli import main as cli_main

    cli_main(args=[*global_args, stage, *stage_args], prog_name=f"jobs.run {stage}")


if __name__ == "__main__":
    main()
