"""Ray Jobs entrypoint for `cli.py embed` (same arguments; submit it with `cli.py submit embed ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("embed")
