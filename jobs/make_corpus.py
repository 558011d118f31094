"""Ray Jobs entrypoint for `cli.py make-corpus` (same arguments; submit it with `cli.py submit make-corpus ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("make-corpus")
