"""Running a stage on an existing Ray cluster through Ray Jobs (the Jobs SDK, JobSubmissionClient).

``cli.py submit STAGE ARGS...`` becomes a job whose entrypoint is ``python -m jobs.run STAGE ...``:
the arguments are a list, each one shell-quoted (the Jobs API takes one command string; nothing the
user typed is ever interpreted by a shell). The resolved config travels inside the runtime env, so
the job runs with exactly the config the user resolved here.

Ray 2.60 clusters use token authentication by default; the token is found the way Ray finds it
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``) or given with ``--token-file``,
and sent as a bearer header whatever ``RAY_AUTH_MODE`` says locally.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = PROJECT_ROOT / "jobs"
DEFAULT_RUNTIME_ENV = JOBS_DIR / "runtime_env.yaml"
DEFAULT_DASHBOARD = "http://127.0.0.1:8265"  # localhost unless the user names a cluster
STAGES = ("extract", "train", "embed", "fit", "score", "evaluate", "run-all", "make-corpus", "manifest")
CONFIG_ENV = "DIFFFAKE_CONFIG_YAML"
TERMINAL = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}


class SubmissionError(RuntimeError):
    pass


AGENT_WAIT_S = 90  # how long `submit` waits for a just-started head's job agent


def find_auth_token(token_file: Optional[str] = None) -> Optional[str]:
    """The cluster token: ``token_file``, then RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token_file:
        return Path(token_file).expanduser().read_text().strip()
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), str(Path.home() / ".ray" / "auth_token")):
        if path and Path(path).expanduser().is_file():
            return Path(path).expanduser().read_text().strip()
    return None


def auth_headers(token_file: Optional[str] = None) -> Dict[str, str]:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled" and not token_file:
        return {}
    token = find_auth_token(token_file)
    return {"Authorization": f"Bearer {token}"} if token else {}


def enable_token_auth_for_driver() -> None:
    """A driver attaching with ``--address`` speaks gRPC to the cluster: Ray reads the mode from
    RAY_AUTH_MODE, so turn it on when a token is at hand and the user did not choose a mode."""
    if "RAY_AUTH_MODE" not in os.environ and find_auth_token():
        os.environ["RAY_AUTH_MODE"] = "token"


def client(address: str, token_file: Optional[str] = None):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address, headers=auth_headers(token_file))
    except Exception as exc:  # noqa: BLE001 - connection and auth errors get one clear message
        hint = ""
        if "401" in str(exc) or "Authentication" in str(exc):
            hint = (" (the cluster wants a token: set RAY_AUTH_TOKEN, put it in ~/.ray/auth_token, or pass "
                    "--token-file; `ray get-auth-token` on the head prints it)")
        raise SubmissionError(f"cannot reach the Ray Jobs API at {address}: {exc}{hint}") from None


def api_failure(address: str, what: str, exc: BaseException) -> str:
    """One line for a failed Jobs API call: the address, what was asked, what came back."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"the Ray Jobs API at {address} failed to {what}: {text[:300]}"


def _api(address: str, what: str, call, *args, **kwargs):
    """One Jobs API call; its failure (an HTTP 500, a dropped connection, an unknown job) is a
    SubmissionError in one line."""
    try:
        return call(*args, **kwargs)
    except SubmissionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the client raises RuntimeError, aiohttp's and requests' types
        raise SubmissionError(api_failure(address, what, exc)) from None


def project_dependencies() -> List[str]:
    """The runtime dependencies of pyproject.toml, for clusters whose image lacks them (``--pip``)."""
    from importlib.metadata import requires

    return [r for r in (requires("difffake-ray") or []) if "extra ==" not in r]


def runtime_env(config_yaml: str, env_file: Optional[str] = None, pip: bool = False) -> Dict[str, Any]:
    """jobs/runtime_env.yaml (or ``env_file``) with the working dir made absolute and the config added."""
    if not (JOBS_DIR / "run.py").is_file():
        raise SubmissionError(f"submit ships the project checkout as the job's working_dir, and {JOBS_DIR} is "
                              "missing: run it from a source checkout of difffake-ray (pip install -e .)")
    path = Path(env_file) if env_file else DEFAULT_RUNTIME_ENV
    env = yaml.safe_load(path.read_text()) or {}
    wd = env.get("working_dir", ".")
    if "://" not in wd:
        env["working_dir"] = str((PROJECT_ROOT / wd).resolve()) if not Path(wd).is_absolute() else wd
    env.setdefault("env_vars", {})[CONFIG_ENV] = config_yaml
    if pip:
        env["pip"] = project_dependencies()
    return env


def entrypoint(stage: str, stage_args: List[str], global_args: Optional[List[str]] = None) -> str:
    """``python -m jobs.run STAGE [global options] -- [stage arguments]``, every argument quoted."""
    if stage not in STAGES:
        raise SubmissionError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    return shlex.join(["python", "-m", "jobs.run", stage, *(global_args or []), "--", *stage_args])


def submit(address: str, stage: str, stage_args: List[str], config_yaml: str, *,
           env_file: Optional[str] = None, pip: bool = False, token_file: Optional[str] = None,
           submission_id: Optional[str] = None, entrypoint_num_gpus: float = 0) -> str:
    c = client(address, token_file)
    kwargs: Dict[str, Any] = {}
    if entrypoint_num_gpus:
        kwargs["entrypoint_num_gpus"] = entrypoint_num_gpus
    import time

    # A head that has just started answers "No available agent ... try again later" until its job
    # agent is up (tens of seconds on a loaded machine): wait for it, then say so in one line.
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return c.submit_job(entrypoint=entrypoint(stage, stage_args),
                                runtime_env=runtime_env(config_yaml, env_file, pip),
                                submission_id=submission_id,
                                metadata={"difffake_stage": stage}, **kwargs)
        except SubmissionError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line, whatever the client raised
            if "No available agent" not in str(exc):
                raise SubmissionError(api_failure(address, f"submit {stage}", exc)) from None
            if time.monotonic() > deadline:
                raise SubmissionError(f"{address}: the head has no job agent after {AGENT_WAIT_S} s "
                                      f"(is the cluster up? `ray status` on the head)") from None
            time.sleep(2)


def wait(address: str, job_id: str, follow: bool = False, token_file: Optional[str] = None,
         poll_s: float = 1.0, timeout_s: Optional[float] = None, out=sys.stdout) -> str:
    """Wait for a terminal status, printing status changes; ``follow`` streams the job's log as it
    grows (the Jobs API's log tail, which ends with the job)."""
    c = client(address, token_file)
    if follow:
        import asyncio

        async def tail() -> None:
            async for chunk in c.tail_job_logs(job_id):
                out.write(chunk)
                out.flush()

        try:
            asyncio.run(asyncio.wait_for(tail(), timeout_s) if timeout_s else tail())
        except Exception as exc:  # noqa: BLE001 - the status below still tells how the job ended
            print(f"job {job_id}: log stream ended early ({exc!r})", file=out, flush=True)
    started, last = time.time(), None
    while True:
        status = _status_name(_api(address, f"report the status of job {job_id}", c.get_job_status, job_id))
        if status != last:
            print(f"job {job_id}: {status}", file=out, flush=True)
            last = status
        if status in TERMINAL:
            return status
        if timeout_s and time.time() - started > timeout_s:
            raise SubmissionError(f"job {job_id} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def _status_name(status) -> str:
    """JobStatus.SUCCEEDED (or 'SUCCEEDED') -> 'SUCCEEDED'."""
    return str(status).split(".")[-1]


def job_info(address: str, job_id: str, token_file: Optional[str] = None) -> Dict[str, Any]:
    info = _api(address, f"describe job {job_id}", client(address, token_file).get_job_info, job_id)
    return {"job_id": job_id, "status": _status_name(info.status), "entrypoint": info.entrypoint,
            "message": info.message, "start_time": info.start_time, "end_time": info.end_time,
            "metadata": info.metadata}


def job_logs(address: str, job_id: str, token_file: Optional[str] = None) -> str:
    return _api(address, f"give the log of job {job_id}", client(address, token_file).get_job_logs, job_id)


def stop_job(address: str, job_id: str, token_file: Optional[str] = None) -> bool:
    return _api(address, f"stop job {job_id}", client(address, token_file).stop_job, job_id)
