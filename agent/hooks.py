"""PrologSlurmctld and EpilogSlurmctld: book a starting job's licenses, release an ended job's.

slurmctld runs these with no PATH, HOME or USER and waits for the prolog before the job starts,
so the prolog is lean: a job without tracked licenses exits before the configuration, logging or
the HTTP client are even imported, and a job with licenses costs one request with a cached token.

Exit codes (slurmctld requeues a batch job whose prolog fails):
- prolog: 0 granted (or nothing to book, or policy `allow`), 1 refused (or policy `requeue`),
  2 invalid configuration.
- epilog: always 0; problems are logged and reconcile removes what the epilog could not. A job
  that ended with a non-zero exit code is checked for a license failure (agent.license_failure)
  and requeued when it died for lack of a license.

Anything that keeps the agent from getting an answer from the API (unreachable, 5xx, token
refused, a value from Slurm we cannot read) follows `prolog_api_unreachable`: `requeue` keeps
tokens safe, `allow` keeps jobs flowing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent.slurm_env import (
    MalformedValue,
    exit_code,
    first_host,
    is_number,
    parse_job_licenses,
)

if TYPE_CHECKING:
    import logging

    from agent.config import AgentConfig

GRANTED = 0
REFUSED = 1
BAD_CONFIG = 2


def prolog(environ: Mapping[str, str]) -> int:
    """Ask the API to book the job's tracked licenses; the exit code tells slurmctld the answer."""
    job_id = environ.get("SLURM_JOB_ID", "?")
    if not _may_hold_licenses(environ):
        return GRANTED
    from agent.logs import start_command

    setup = start_command("prolog")
    if setup is None:
        return BAD_CONFIG
    config, log = setup
    try:
        job = _job_record(environ)
    except MalformedValue as error:
        return _undecided(config, log, job_id, str(error))
    return _book(config, log, job_id, job)


def epilog(environ: Mapping[str, str]) -> int:
    """Delete the job and its bookings; requeue a failed job that died for lack of a license.

    Never fails the epilog: reconcile removes what could not be released, and a license-failure
    check that cannot decide leaves the job as Slurm ended it.
    """
    holds_licenses = _may_hold_licenses(environ)
    failed = exit_code(environ) != 0
    if not (holds_licenses or failed):
        return 0  # the prolog booked nothing and there is no failure to look at
    from agent.logs import start_command

    setup = start_command("epilog")
    if setup is None:
        return 0
    config, log = setup
    if holds_licenses:
        _release(config, log, environ.get("SLURM_JOB_ID", ""))
    if failed and config.license_failures.requeue:
        _check_license_failure(config, log, environ)
    return 0


def _release(config: AgentConfig, log: logging.Logger, job_id: str) -> None:
    if not is_number(job_id):
        log.error("job %r not released: SLURM_JOB_ID is not a job number", job_id)
        return
    from agent.api import ApiClient, ApiError

    try:
        response = ApiClient(config).request("DELETE", f"/lm/jobs/slurm_job_id/{job_id}")
    except ApiError as error:
        log.error("job %s not released: %s; reconcile will remove it", job_id, error)
        return
    if response.ok:
        log.info("job %s released: its bookings are deleted", job_id)
    elif response.status == 404:
        log.info("job %s released: the API held no record of it", job_id)
    else:
        log.error(
            "job %s not released: API answered %s: %s; reconcile will remove it",
            job_id,
            response.status,
            response.message,
        )


def _check_license_failure(
    config: AgentConfig, log: logging.Logger, environ: Mapping[str, str]
) -> None:
    """agent.license_failure, imported for failed jobs only; any error leaves the job alone."""
    try:
        from agent import license_failure

        license_failure.handle(config, log, environ)
    except Exception as error:  # slurmctld must get exit 0 and one clear line, never a traceback
        log.error(
            "job %s: license-failure check failed (%s: %s); job left as it is",
            environ.get("SLURM_JOB_ID"),
            type(error).__name__,
            error,
        )
        log.debug("license-failure check failed", exc_info=True)


def _may_hold_licenses(environ: Mapping[str, str]) -> bool:
    """False only when SLURM_JOB_LICENSES surely names no tracked license (malformed: True)."""
    try:
        return bool(parse_job_licenses(environ.get("SLURM_JOB_LICENSES")))
    except MalformedValue:
        return True  # the prolog reports it once the log is set up


def _job_record(environ: Mapping[str, str]) -> dict[str, Any]:
    """The POST /lm/jobs body from slurmctld's variables; MalformedValue when one is unusable."""
    licenses = parse_job_licenses(environ.get("SLURM_JOB_LICENSES"))
    job_id = environ.get("SLURM_JOB_ID", "")
    if not is_number(job_id):
        raise MalformedValue(f"SLURM_JOB_ID={job_id!r} is not a job number")
    username = environ.get("SLURM_JOB_USER") or environ.get("SLURM_JOB_UID")
    if not username:
        raise MalformedValue("neither SLURM_JOB_USER nor SLURM_JOB_UID is set")
    lead_host = first_host(environ.get("SLURM_JOB_NODELIST"))
    if lead_host is None:
        raise MalformedValue("SLURM_JOB_NODELIST is not set: the job has no lead host")
    return {
        "slurm_job_id": job_id,  # squeue's %A: array tasks have their own numeric id here
        "username": username,
        "lead_host": lead_host,
        "bookings": [
            {"product_feature": name, "quantity": count} for name, count in licenses.items()
        ],
    }


def _book(config: AgentConfig, log: logging.Logger, job_id: str, job: dict[str, Any]) -> int:
    from agent.api import ApiClient, ApiError

    try:
        response = ApiClient(config).request("POST", "/lm/jobs", json=job)
    except ApiError as error:
        return _undecided(config, log, job_id, str(error))
    asked = " ".join(f"{b['product_feature']}={b['quantity']}" for b in job["bookings"])
    who = f"user {job['username']}, lead host {job['lead_host']}"
    if response.status == 201:
        body = response.body if isinstance(response.body, dict) else {}
        untracked = body.get("untracked") or []
        ignored = f"; not tracked: {' '.join(untracked)}" if untracked else ""
        log.info("job %s granted: %s (%s)%s", job_id, asked, who, ignored)
        return GRANTED
    if response.status == 409:
        log.warning(
            "job %s refused: %s (%s): %s; Slurm requeues it",
            job_id,
            asked,
            who,
            response.message.rstrip("."),
        )
        return REFUSED
    return _undecided(
        config, log, job_id, f"POST /lm/jobs answered {response.status}: {response.message}"
    )


def _undecided(config: AgentConfig, log: logging.Logger, job_id: str, problem: str) -> int:
    """No answer from the API: apply `prolog_api_unreachable` and say so in one line."""
    if config.prolog_api_unreachable == "allow":
        log.error("job %s allowed unchecked: %s (prolog_api_unreachable=allow)", job_id, problem)
        return GRANTED
    log.error("job %s requeued unchecked: %s (prolog_api_unreachable=requeue)", job_id, problem)
    return REFUSED
