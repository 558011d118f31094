"""Ray Jobs entrypoint for `cli.py evaluate` (same arguments; submit it with `cli.py submit evaluate ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("evaluate")
