"""The Ray Jobs entrypoint (``python -m jobs.run``) and the jobs' runtime env."""
