"""Ray Jobs entrypoint for `cli.py manifest` (same arguments; submit it with `cli.py submit manifest ...`)."""

from _entry import run_stage

if __name__ == "__main__":
    run_stage("manifest")
