"""Ray Jobs entrypoint for `cli.py fit` (same arguments; submit it with `cli.py submit fit ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("fit")
