"""Ray Jobs entrypoint for `cli.py extract` (same arguments; submit it with `cli.py submit extract ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("extract")
