"""End-to-end scenarios on the whole stack: a real slurmctld whose prolog and epilog run the agent,
the API under gunicorn on PostgreSQL, simulated license servers and the agent's reconcile loop.

Every wait polls real state with a deadline. The reconcile loop runs every 2 s, a job refused by
its prolog is eligible again ~6 s later (cred_expire=5), so deadlines are a few cycles long.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from agent.config import AgentConfig
from devstack.processes import wait_for
from devstack.stack import ApiSession, Pool, Stack
from lm_common.facts import AGENT_PERMISSIONS
from tests.e2e.licensed import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

PoolFactory = Callable[..., Pool]  # the `new_pool` fixture

# Reconcile cycles and requeue delays on a machine shared with other test runs.
CYCLES = 30.0
DESKTOP = "desktop07"


def wait_reserved(stack: Stack, pool_license: str, count: int) -> None:
    wait_for(
        lambda: stack.slurm.license_usage()[pool_license]["Reserved"] == count,
        CYCLES,
        f"the reservation to hold {count} {pool_license}",
    )


def agent_log_lines(stack: Stack, *words: str) -> list[str]:
    """Lines of the agent's log that contain every one of `words` (what an admin would grep)."""
    lines = stack.agent_log.read_text().splitlines()
    return [line for line in lines if all(word in line for word in words)]


def wait_refused_at_least(stack: Stack, job_id: int, times: int) -> None:
    """Wait until the prolog refused the job `times` times; it must never have run meanwhile."""

    def refused_enough() -> bool:
        assert stack.slurm.job_state(job_id) not in {"RUNNING", "COMPLETED"}
        return stack.slurm.job_restarts(job_id) >= times

    wait_for(refused_enough, CYCLES, f"job {job_id} to be refused {times} times", interval=0.05)


def test_job_is_booked_while_it_runs_and_released_by_its_epilog(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(5)
    # It checks its tokens out only once released: its booking is what holds them till then.
    job = ledger.submit_held(pool, 2, checkout_on_release=True)
    stack.slurm.wait_for_job(job.job_id, "RUNNING")

    record = stack.api_job(job.job_id)
    assert record is not None, "the prolog should have booked the job before it started"
    assert [(b["product_feature"], b["quantity"]) for b in record["bookings"]] == [
        (pool.product_feature, 2)
    ]
    assert stack.feature(pool)["booked"] == 2
    assert stack.slurm.job_restarts(job.job_id) == 0

    job.release()
    stack.slurm.wait_for_job(job.job_id, "COMPLETED")
    wait_for(lambda: stack.api_job(job.job_id) is None, CYCLES, "the epilog to delete the job")
    assert stack.feature(pool)["booked"] == 0
    assert agent_log_lines(stack, "epilog", f"job {job.job_id} released")


def test_desktop_checkouts_are_reserved_and_jobs_wait_until_checked_in(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(10)
    stack.simulator.checkout(pool.servers[0], pool.feature, DESKTOP, "ws12", 4)
    wait_reserved(stack, pool.slurm_license, 4)

    job_id = ledger.submit(pool, 7)
    assert stack.slurm.wait_for_reason(job_id) == "Licenses"
    fits = ledger.submit(pool, 6)
    stack.slurm.wait_for_job(fits, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_status(job_id) == ("PENDING", "Licenses")

    stack.simulator.checkin(pool.servers[0], DESKTOP)
    wait_reserved(stack, pool.slurm_license, 0)
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)
    # Slurm may only start it once the reservation shrank, i.e. after the API saw the check-in:
    # a start refused by the prolog means the reservation was too small for a while.
    assert stack.slurm.job_restarts(job_id) == 0, "the prolog had to refuse it"


def test_two_jobs_racing_for_the_last_tokens_one_is_granted_the_other_waits_its_turn(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(4, grace_time=3600)
    other = other_cluster(stack, "race", pool, total=4)
    # Between two reconcile runs another cluster books 2 of the 4 tokens: Slurm still sees 4.
    stack.stop_reconcile_loop()
    report_as_a_slow_agent(stack, pool, used=0)
    other.call("POST", "/lm/jobs", json=other_job(pool.product_feature, 2))
    assert stack.slurm.license_usage()[pool.slurm_license]["Reserved"] == 0

    first = ledger.submit_held(pool, 2)
    second = ledger.submit_held(pool, 2)

    def one_running_one_requeued() -> tuple[int, int] | None:
        states = {job.job_id: stack.slurm.job_state(job.job_id) for job in (first, second)}
        restarts = {job_id: stack.slurm.job_restarts(job_id) for job_id in states}
        running = [job_id for job_id, state in states.items() if state == "RUNNING"]
        requeued = [job_id for job_id in states if restarts[job_id] >= 1]
        if len(running) == 1 and len(requeued) == 1 and running != requeued:
            return running[0], requeued[0]
        return None

    winner, loser = wait_for(one_running_one_requeued, CYCLES, "the prologs to decide")
    assert [job["slurm_job_id"] for job in stack.api_jobs()
            if job["cluster_client_id"] == stack.cluster_client_id] == [str(winner)]  # fmt: skip

    by_id = {first.job_id: first, second.job_id: second}
    by_id[winner].release()
    stack.slurm.wait_for_job(winner, "COMPLETED")
    stack.slurm.wait_for_job(loser, "RUNNING", timeout=CYCLES)
    by_id[loser].release()
    stack.slurm.wait_for_job(loser, "COMPLETED")


def test_desktop_reserved_tokens_are_never_given_to_jobs(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(4, reserved=1)
    # The reservation keeps the desktops' share out of Slurm's reach: the job is not even tried.
    wait_reserved(stack, pool.slurm_license, 1)
    greedy = ledger.submit(pool, 4)
    assert stack.slurm.wait_for_reason(greedy) == "Licenses"

    modest = ledger.submit(pool, 3)
    stack.slurm.wait_for_job(modest, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_status(greedy) == ("PENDING", "Licenses")
    assert stack.slurm.job_restarts(greedy) == 0
    assert stack.api_job(greedy) is None


def test_the_prolog_refuses_desktop_reserved_tokens_even_when_slurm_offers_them(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    """Between two reconcile runs Slurm may not know the share yet: the booking rule holds it."""
    pool = new_pool(4, reserved=1)
    stack.stop_reconcile_loop()
    report_as_a_slow_agent(stack, pool, used=0)
    # Drop what the agent reserved so far (none, if it was stopped before reserving).
    stack.slurm.run(
        "scontrol", "delete", f"reservationname={AgentConfig.reservation_name}", check=False
    )
    greedy = ledger.submit(pool, 4)
    wait_refused_at_least(stack, greedy, 1)
    assert stack.api_job(greedy) is None
    assert agent_log_lines(stack, f"job {greedy} refused")


def test_unreachable_license_server_is_fully_reserved_until_it_comes_back(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(6)
    stack.simulator.fault(pool.servers[0], "down")
    wait_reserved(stack, pool.slurm_license, 6)
    job_id = ledger.submit(pool, 1)
    assert stack.slurm.wait_for_reason(job_id) == "Licenses"

    stack.simulator.fault(pool.servers[0], "none")
    wait_reserved(stack, pool.slurm_license, 0)
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)


def test_a_slurm_total_above_the_servers_starts_no_job_the_prolog_refuses(
    stack: Stack, new_pool: PoolFactory
) -> None:
    """Licenses= says 10 while the license server has 4: the agent reserves the 6 Slurm does
    not really have, so of four jobs wanting 2 each, two run at a time and none is refused."""
    pool = new_pool(4)
    stack.slurm.set_licenses({**stack.slurm.licenses, pool.slurm_license: 10})
    wait_reserved(stack, pool.slurm_license, 6)

    jobs = [stack.slurm.submit("sleep 2", licenses={pool.slurm_license: 2}) for _ in range(4)]
    for job_id in jobs:
        stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=4 * CYCLES)

    assert [stack.slurm.job_restarts(job_id) for job_id in jobs] == [0, 0, 0, 0]
    assert not [line for job_id in jobs for line in agent_log_lines(stack, f"job {job_id} refused")]
    [warning] = agent_log_lines(
        stack, "WARNING", f"{pool.slurm_license}: Slurm's total 10 is above the license server's 4"
    )
    assert f"set Licenses={pool.slurm_license}:4 in slurm.conf" in warning


def test_a_mirror_answers_when_the_first_server_is_down(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(6, mirrors=2)
    stack.simulator.fault(pool.servers[0], "down")
    reported_before = stack.feature(pool)["reported_at"]
    wait_for(
        lambda: stack.feature(pool)["reported_at"] != reported_before,
        CYCLES,
        "a report made while the first server is down",
    )
    assert stack.feature(pool)["report_status"] == "ok"
    assert stack.reserved(pool) == 0
    job_id = ledger.submit(pool, 6)
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_restarts(job_id) == 0


def test_a_job_that_never_checks_out_keeps_its_booking_past_the_grace_time_until_the_maximum(
    stack: Stack, new_pool: PoolFactory
) -> None:
    pool = new_pool(3, grace_time=1)
    max_age = 8
    assert stack.admin is not None
    stack.admin.call(
        "PUT", f"/lm/configurations/{pool.config_id}", json={"booking_max_age": max_age}
    )
    job = stack.slurm.submit_held(licenses={pool.slurm_license: 2})
    stack.slurm.wait_for_job(job.job_id, "RUNNING")
    record = stack.api_job(job.job_id)
    assert record is not None and record["bookings"]
    booked_at = datetime.fromisoformat(record["bookings"][0]["created_at"])

    wait_for(
        lambda: (found := stack.api_job(job.job_id)) is None or not found["bookings"],
        CYCLES,
        "reconcile to drop the booking once its maximum age passed",
    )
    held_for = (datetime.now(UTC) - booked_at).total_seconds()
    assert held_for >= max_age, f"dropped after {held_for:.1f} s, before its maximum age"
    assert stack.slurm.job_state(job.job_id) == "RUNNING"
    assert agent_log_lines(
        stack, f"booking of job {job.job_id} deleted", f"maximum age of {max_age} s"
    )
    job.release()


def test_a_job_still_starting_up_keeps_its_tokens_past_the_grace_time_until_its_checkout(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    grace_time = 1
    pool = new_pool(4, grace_time=grace_time)
    # A solver reading its input: it checks its 3 tokens out only once released.
    starting = ledger.submit_held(pool, 3, checkout_on_release=True)
    stack.slurm.wait_for_job(starting.job_id, "RUNNING")
    record = stack.api_job(starting.job_id)
    assert record is not None
    booked_at = datetime.fromisoformat(record["bookings"][0]["created_at"])
    past_grace = grace_time + 3 * stack.reconcile_interval
    wait_for(
        lambda: (datetime.now(UTC) - booked_at).total_seconds() > past_grace,
        CYCLES,
        "a few reconcile cycles past the grace time",
    )
    assert stack.api_job(starting.job_id)["bookings"], "the booking outlives the grace time"

    # Its tokens stay out of other jobs' reach: 1 is left, a job of 2 waits.
    waiting = ledger.submit(pool, 2)
    assert stack.slurm.wait_for_reason(waiting) == "Licenses"

    starting.release()  # it checks out, works, checks in and ends
    stack.slurm.wait_for_job(starting.job_id, "COMPLETED", timeout=CYCLES)
    stack.slurm.wait_for_job(waiting, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_restarts(waiting) == 0


def test_a_job_that_checks_out_frees_its_booking_at_the_next_cycle(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(4, grace_time=3600)
    job = ledger.submit_held(pool, 3)  # checks its tokens out as soon as it starts

    wait_for(
        lambda: (found := stack.api_job(job.job_id)) is not None and not found["bookings"],
        CYCLES,
        "reconcile to see the checkout and delete the booking",
    )
    assert agent_log_lines(stack, f"booking of job {job.job_id} deleted", "checked out 3")
    assert stack.feature(pool)["used"] == 3
    job.release()
    stack.slurm.wait_for_job(job.job_id, "COMPLETED")


def test_after_an_api_outage_no_booking_is_granted_on_figures_from_before_it(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(10)
    server = pool.servers[0]
    stack.simulator.checkout(server, pool.feature, DESKTOP, "ws12", 2)
    wait_reserved(stack, pool.slurm_license, 2)
    before = stack.feature(pool)
    assert before["used"] == 2

    stack.api.stop()
    # Desktops take 5 more meanwhile: the agent, without the API, still follows the server.
    stack.simulator.checkout(server, pool.feature, "desktop08", "ws13", 5)
    wait_reserved(stack, pool.slurm_license, 7)
    assert agent_log_lines(stack, "reconcile ran degraded")
    # Longer than the 3 reconcile intervals a report is trusted for.
    wait_for(
        lambda: (
            (datetime.now(UTC) - datetime.fromisoformat(before["reported_at"])).total_seconds()
            > 4 * stack.reconcile_interval
        ),
        CYCLES,
        "an outage longer than a report stays fresh",
    )

    stack.api.start()
    # A prolog in the first moment: the API still holds 2 used (old figures, now stale).
    agent = ApiSession(stack.api.url, stack.agent_client)
    first = agent.request("POST", "/lm/jobs", json={
        "slurm_job_id": "990001", "username": "root", "lead_host": stack.slurm.node_name,
        "bookings": [{"product_feature": pool.product_feature, "quantity": 4}],
    })  # fmt: skip
    assert first.status == 409, "granted on figures from before the outage"
    refusal = first.body["errors"][pool.product_feature]
    assert "stale" in refusal.get("reason", "") or refusal.get("available") == 3

    # Once the agent reported again: 3 fit, a fourth waits.
    wait_for(
        lambda: agent_log_lines(stack, "API reachable again: caught up"),
        CYCLES,
        "the agent to catch up",
    )
    assert stack.feature(pool)["used"] == 7
    fits = ledger.submit(pool, 3)
    stack.slurm.wait_for_job(fits, "COMPLETED", timeout=CYCLES)
    too_many = ledger.submit(pool, 4)
    assert stack.slurm.wait_for_reason(too_many) == "Licenses"


def test_bookings_of_another_cluster_on_the_same_pool_shrink_this_clusters_share(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(8, grace_time=3600)
    other = other_cluster(stack, "shared", pool, total=8)
    booked = other.call("POST", "/lm/jobs", json=other_job(pool.product_feature, 3))
    wait_reserved(stack, pool.slurm_license, 3)

    job_id = ledger.submit(pool, 6)
    assert stack.slurm.wait_for_reason(job_id) == "Licenses"

    other.call("DELETE", f"/lm/jobs/{booked['id']}")
    wait_reserved(stack, pool.slurm_license, 0)
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)


def test_api_down_requeues_jobs_by_default_and_they_run_once_it_is_back(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(4)
    stack.api.stop()
    job_id = ledger.submit(pool, 1)
    wait_refused_at_least(stack, job_id, 1)
    assert agent_log_lines(stack, f"job {job_id} requeued unchecked")

    stack.api.start()
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)


def test_api_down_with_policy_allow_lets_jobs_start_unchecked(
    stack: Stack, new_pool: PoolFactory, ledger: Ledger
) -> None:
    pool = new_pool(4)
    stack.write_agent_config(prolog_api_unreachable="allow")
    stack.api.stop()
    job_id = ledger.submit(pool, 1)
    stack.slurm.wait_for_job(job_id, "COMPLETED", timeout=CYCLES)
    assert stack.slurm.job_restarts(job_id) == 0
    assert agent_log_lines(stack, f"job {job_id} allowed unchecked")


def test_jobs_without_licenses_run_even_while_the_api_is_down(stack: Stack) -> None:
    stack.api.stop()
    job_id = stack.slurm.submit("true")
    stack.slurm.wait_for_job(job_id, "COMPLETED")
    assert stack.slurm.job_restarts(job_id) == 0


def test_jobs_with_untracked_licenses_are_not_delayed(stack: Stack) -> None:
    untracked = "matlab.matlab@flexlm"
    stack.slurm.set_licenses({**stack.slurm.licenses, untracked: 2})
    job_id = stack.slurm.submit("true", licenses={untracked: 2})
    stack.slurm.wait_for_job(job_id, "COMPLETED")
    assert stack.slurm.job_restarts(job_id) == 0
    assert agent_log_lines(stack, f"job {job_id} granted", "not tracked", "matlab.matlab")


def report_as_a_slow_agent(stack: Stack, pool: Pool, used: int) -> None:
    """Report the pool as this cluster's agent would if it reconciled only every 10 minutes:
    the report stays fresh (bookable) while the test holds the reconcile loop."""
    agent = ApiSession(stack.api.url, stack.agent_client)
    total = stack.slurm.licenses[pool.slurm_license]
    report = {"product_name": pool.product, "feature_name": pool.feature, "total": total,
              "used": used, "interval": 600}  # fmt: skip
    agent.call("PUT", "/lm/features/by_client_id", json=[report])


def other_cluster(stack: Stack, name: str, pool: Pool, total: int) -> ApiSession:
    """Another Slurm cluster configured on the same license server, as its agent talks to the API.

    Its agent has read the server once (all `total` tokens free) and reported it, as
    `lm-agent reconcile` would: the API books nothing on a pool nobody has read.
    """
    credentials = stack.api.create_client(f"cluster-{name}", AGENT_PERMISSIONS)
    other = ApiSession(stack.api.url, credentials)
    stack.add_pool(pool.product, pool.feature, total, cluster_client_id=credentials["client_id"],
                   servers=pool.servers)  # fmt: skip
    report = {"product_name": pool.product, "feature_name": pool.feature, "total": total, "used": 0}
    other.call("PUT", "/lm/features/by_client_id", json=[report])
    return other


def other_job(product_feature: str, quantity: int) -> dict[str, object]:
    """What the other cluster's prolog posts for one of its jobs."""
    return {
        "slurm_job_id": "900001",
        "username": "bob",
        "lead_host": "other-node01",
        "bookings": [{"product_feature": product_feature, "quantity": quantity}],
    }
