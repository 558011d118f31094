"""Ray Jobs entrypoint for `cli.py run-all` (same arguments; submit it with `cli.py submit run-all ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("run-all")
