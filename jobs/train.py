"""Ray Jobs entrypoint for `cli.py train` (same arguments; submit it with `cli.py submit train ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("train")
