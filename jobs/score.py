"""Ray Jobs entrypoint for `cli.py score` (same arguments; submit it with `cli.py submit score ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("score")
