"""Issue 10 on the whole stack: a real slurmctld whose EpilogSlurmctld runs `lm-agent epilog`
requeues jobs that died for lack of a license, and only those.

A requeued job is eligible again cred_expire + 1 = 6 s later; the time-limit scenario waits for
Slurm's own time-limit check (a 1 minute limit is Slurm's smallest), hence its longer deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devstack.processes import wait_for
from devstack.stack import Pool, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

PoolFactory = Callable[..., Pool]
CYCLES = 60.0
FLEXNET = "FlexNet Licensing error:-4,132. Licensed number of users already reached."
# Fails for a license on its first run, succeeds on the next (Slurm sets SLURM_RESTART_COUNT).
FAILS_ONCE = f"""#!/bin/sh
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
    echo "solver: checking out a license"
    echo "{FLEXNET}" >&2
    exit 1
fi
echo "solver: done"
"""


def script(*lines: str) -> str:
    return "#!/bin/sh\n" + "\n".join(lines) + "\n"


def log_lines(stack: Stack, *words: str) -> list[str]:
    return [
        line for line in stack.agent_log.read_text().splitlines() if all(w in line for w in words)
    ]


def wait_epilog_done(stack: Stack, job_id: int, runs: int = 1) -> None:
    """The epilog has released the job `runs` times (it logs that before checking failures)."""
    wait_for(
        lambda: len(log_lines(stack, "epilog", f"job {job_id} released")) >= runs,
        CYCLES,
        f"the epilog of job {job_id} to run {runs} time(s)",
    )


def test_a_job_failing_for_a_license_is_requeued_and_completes(
    stack: Stack, new_pool: PoolFactory
) -> None:
    pool = new_pool(5)

    job_id = stack.slurm.submit(FAILS_ONCE, licenses={pool.slurm_license: 1})

    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_restarts(job_id) == 1
    [line] = log_lines(stack, f"job {job_id} requeued")
    assert f"job {job_id} requeued (1 of 3): FlexNet -4 " in line
    assert f"'Licensed number of users already reached' in {stack.slurm.job_dir}" in line
    [event] = stack.license_failures(job_id)
    assert {k: event[k] for k in ("action", "requeue_count", "feature", "username")} == {
        "action": "requeued",
        "requeue_count": 1,
        "feature": pool.product_feature,
        "username": "root",
    }
    assert event["cluster_client_id"] == stack.cluster_client_id
    assert event["matched_rule"] == "FlexNet -4 'Licensed number of users already reached'"
    wait_epilog_done(stack, job_id, runs=2)
    assert stack.api_job(job_id) is None, "the last epilog releases the job's bookings"


def test_the_same_exit_code_without_license_text_is_not_requeued(
    stack: Stack, new_pool: PoolFactory
) -> None:
    pool = new_pool(5)

    job_id = stack.slurm.submit(
        script("echo 'Segmentation fault' >&2", "exit 1"), licenses={pool.slurm_license: 1}
    )

    stack.slurm.wait_for_job(job_id, "FAILED", timeout=CYCLES)
    wait_epilog_done(stack, job_id)
    assert stack.slurm.job_state(job_id) == "FAILED"
    assert stack.slurm.job_restarts(job_id) == 0
    assert stack.license_failures(job_id) == []


def test_license_text_matching_a_not_license_failure_rule_is_not_requeued(
    stack: Stack, new_pool: PoolFactory
) -> None:
    pool = new_pool(5)
    stack.write_agent_config(
        license_failures={"not_license_failures": [{"pattern": "license self-test"}]}
    )

    job_id = stack.slurm.submit(
        script("echo 'license self-test'", f"echo '{FLEXNET}'", "exit 1"),
        licenses={pool.slurm_license: 1},
    )

    stack.slurm.wait_for_job(job_id, "FAILED", timeout=CYCLES)
    wait_for(
        lambda: log_lines(stack, f"job {job_id} not requeued", "not_license_failures[0]"),
        CYCLES,
        "the epilog to log the veto",
    )
    assert stack.slurm.job_restarts(job_id) == 0
    assert stack.slurm.job_state(job_id) == "FAILED"
    assert stack.license_failures(job_id) == []


def test_cancelled_and_timed_out_jobs_are_not_requeued(stack: Stack, new_pool: PoolFactory) -> None:
    pool = new_pool(5)
    stuck = script(f"echo '{FLEXNET}'", "sleep 600", "exit 1")
    cancelled = stack.slurm.submit(stuck, licenses={pool.slurm_license: 1})
    timed_out = stack.slurm.submit(stuck, "--time=1", licenses={pool.slurm_license: 1})
    stack.slurm.wait_for_job(cancelled, "RUNNING", timeout=CYCLES)

    stack.slurm.run("scancel", str(cancelled))

    stack.slurm.wait_for_job(cancelled, "CANCELLED", timeout=CYCLES)
    stack.slurm.wait_for_job(timed_out, "TIMEOUT", timeout=180)
    wait_epilog_done(stack, cancelled)
    wait_epilog_done(stack, timed_out)
    for job_id in (cancelled, timed_out):
        assert stack.slurm.job_restarts(job_id) == 0
        assert stack.license_failures(job_id) == []
        assert not log_lines(stack, f"job {job_id} requeued")
    assert stack.slurm.job_state(cancelled) == "CANCELLED"
    assert stack.slurm.job_state(timed_out) == "TIMEOUT"


def test_a_job_that_keeps_failing_is_requeued_the_configured_times_then_left_failed(
    stack: Stack, new_pool: PoolFactory
) -> None:
    pool = new_pool(5)
    stack.write_agent_config(license_failures={"max_requeues": 2})

    job_id = stack.slurm.submit(
        script(f"echo '{FLEXNET}'", "exit 1"), licenses={pool.slurm_license: 1}
    )

    wait_for(
        lambda: log_lines(stack, f"job {job_id} left failed"),
        CYCLES * 2,
        f"job {job_id} to be left failed",
    )
    stack.slurm.wait_for_job(job_id, "FAILED", timeout=CYCLES)
    assert stack.slurm.job_restarts(job_id) == 2
    assert [
        (e["action"], e["requeue_count"], e["reason"]) for e in stack.license_failures(job_id)
    ] == [
        ("requeued", 1, "requeue 1 of 2"),
        ("requeued", 2, "requeue 2 of 2"),
        ("left_failed", 2, "requeue limit 2 reached"),
    ]
    [line] = log_lines(stack, f"job {job_id} left failed")
    assert f"job {job_id} left failed (requeue limit 2 reached): FlexNet -4" in line
