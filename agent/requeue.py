"""Act on a recognised license failure: requeue the job (bounded), or leave it failed; say so.

Imported by agent.license_failure only once a failure is recognised, so the normal epilog never
loads subprocess or the Slurm adapter. One log line per decision, e.g.

    job 123 requeued (2 of 3): FlexNet -4 'Licensed number of users already reached' in /h/j.out
    job 123 left failed (requeue limit 3 reached): FlexNet -4 '...' in /h/slurm-123.out

and one license-failure event in the API (POST /lm/license_failures).

How many times the job was requeued already: the API's `requeued` events for this cluster and
job id, never more than SLURM_JOB_RESTART_COUNT (which also counts prolog refusals, but is 0 for
a new job that happens to reuse an old id). Without an answer from the API the restart count
alone is used: it can only overcount, so a job is requeued too little rather than forever.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from agent.api import ApiClient, ApiError
from agent.job_output import shown
from agent.slurm import Slurm, SlurmError

if TYPE_CHECKING:
    import logging

    from agent.config import AgentConfig
    from agent.license_failure import EndedJob, Verdict

EVENTS_PATH = "/lm/license_failures"
# scontrol answers in milliseconds; slurmctld is busy or gone when it takes longer.
SCONTROL_TIMEOUT = 10.0


def act(config: AgentConfig, log: logging.Logger, job: EndedJob, verdict: Verdict) -> None:
    """Requeue the job or leave it failed, log the decision and record it in the API."""
    api = ApiClient(config)
    limit = config.license_failures.max_requeues
    done = requeues_so_far(api, job, log)
    count = done
    if verdict.requeue_off_by is not None:
        action, reason = "left_failed", f"requeue turned off for {verdict.requeue_off_by}"
    elif done >= limit:
        action, reason = "left_failed", f"requeue limit {limit} reached"
    else:
        try:
            slurm = Slurm(
                config.tools.scontrol,
                config.tools.squeue,
                slurm_conf=config.slurm_conf,
                timeout=SCONTROL_TIMEOUT,
            )
            slurm.requeue(job.job_id)
        except SlurmError as error:
            action, reason = "left_failed", f"requeue refused by Slurm: {error.problem}"
        else:
            count = done + 1
            action, reason = "requeued", f"{count} of {limit}"
    where = f" in {shown(verdict.output_file)}" if verdict.output_file else ""
    if action == "requeued":
        log.warning("job %s requeued (%s): %s%s", job.job_id, reason, verdict.rule, where)
    else:
        log.warning("job %s left failed (%s): %s%s", job.job_id, reason, verdict.rule, where)
    event = {
        "slurm_job_id": job.job_id,
        "username": job.user,
        "feature": verdict.feature[:511],
        "matched_rule": verdict.rule[:511],
        "action": action,
        "requeue_count": count,
        "reason": reason if action == "left_failed" else f"requeue {reason}",
    }
    if verdict.output_file:
        event["output_file"] = verdict.output_file[:4096]
    _record(api, log, job, event)


def requeues_so_far(api: ApiClient, job: EndedJob, log: logging.Logger) -> int:
    """This job's earlier license-failure requeues (see the module's docstring)."""
    try:
        response = api.request(
            "GET",
            EVENTS_PATH,
            params={"slurm_job_id": job.job_id, "action": "requeued", "page_size": 1},
        )
        if not response.ok:
            raise ApiError(f"GET {EVENTS_PATH} answered {response.status}: {response.message}")
        recorded = int(json.loads(response.headers.get("x-pagination") or "{}").get("total", 0))
    except (ApiError, ValueError) as error:
        log.error(
            "job %s: earlier requeues unknown (%s); counting Slurm's restarts (%s)",
            job.job_id,
            error,
            job.restart_count,
        )
        return job.restart_count
    return min(recorded, job.restart_count)


def _record(api: ApiClient, log: logging.Logger, job: EndedJob, event: dict[str, object]) -> None:
    try:
        response = api.request("POST", EVENTS_PATH, json=event)
    except ApiError as error:
        log.error("job %s: license failure not recorded in the API: %s", job.job_id, error)
        return
    if not response.ok:
        log.error(
            "job %s: license failure not recorded in the API: %s answered %s: %s",
            job.job_id,
            EVENTS_PATH,
            response.status,
            response.message,
        )
