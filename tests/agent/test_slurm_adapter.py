"""The Slurm adapter: Slurm 22.05's exact outputs, bad outputs, and a real single-node cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from agent.slurm import (
    RENEW_WHEN_LESS_THAN,
    Slurm,
    SlurmError,
    SlurmJob,
    parse_demand,
    parse_jobs,
    parse_licenses,
    parse_reservation,
)
from devstack.processes import wait_for
from devstack.slurm import SlurmCluster

SCONTROL = "/usr/bin/scontrol"
SQUEUE = "/usr/bin/squeue"
ARGV = ["squeue"]

# Verbatim Slurm 22.05.8 output (docs/architecture.md, "Slurm").
SHOW_LIC = (
    "LicenseName=abaqus.abaqus@flexlm Total=100 Used=5 Free=95 Reserved=0 Remote=no\n"
    "LicenseName=ansys.cfd@rlm Total=20 Used=0 Free=20 Reserved=2 Remote=no\n"
)
SQUEUE_OUTPUT = (
    "7|abaqus.abaqus@flexlm:30|RUNNING\n"
    "2|abaqus.abaqus@flexlm:5,ansys.cfd@rlm:2|PENDING\n"
    "5|abaqus.abaqus@flexlm|PENDING\n"
    "9|(null)|RUNNING\n"
)
SHOW_RESERVATION = (
    "ReservationName=lm StartTime=2026-11-21T14:10:39 EndTime=2027-11-21T14:10:39 "
    "Duration=365-00:00:00 Nodes=(null) NodeCnt=0 CoreCnt=0 Features=(null) "
    "PartitionName=(null) Flags=ANY_NODES TRES=(null) Users=root Groups=(null) Accounts=(null) "
    "Licenses=abaqus.abaqus@flexlm:5,ansys.cfd@rlm:2 State=ACTIVE BurstBuffer=(null) "
    "Watts=n/a MaxStartDelay=(null)\n"
)


def test_license_lines_give_total_used_and_reserved() -> None:
    licenses = parse_licenses(["scontrol"], SHOW_LIC)

    assert licenses["abaqus.abaqus@flexlm"].total == 100
    assert licenses["abaqus.abaqus@flexlm"].used == 5
    assert licenses["ansys.cfd@rlm"].reserved == 2
    assert parse_licenses(["scontrol"], "No licenses configured\n") == {}


def test_license_line_with_a_non_numeric_count_is_a_clear_error() -> None:
    with pytest.raises(SlurmError, match=r"scontrol: Used=lots is not a count"):
        parse_licenses(["scontrol"], "LicenseName=a@x Total=10 Used=lots Reserved=0\n")


def test_squeue_lines_give_jobs_with_their_licenses() -> None:
    jobs = {job.job_id: job for job in parse_jobs(ARGV, SQUEUE_OUTPUT)}

    assert jobs["7"].state == "RUNNING"
    assert jobs["2"].licenses == {"abaqus.abaqus@flexlm": 5, "ansys.cfd@rlm": 2}
    assert jobs["2"].state == "PENDING"
    assert jobs["5"].licenses == {"abaqus.abaqus@flexlm": 1}, "a missing count means 1"
    assert jobs["9"].licenses == {}


def test_demand_counts_only_jobs_pending_for_licenses() -> None:
    pending = (
        "abaqus.abaqus@flexlm:5,ansys.cfd@rlm:2|Licenses\n"
        "abaqus.abaqus@flexlm|Licenses\n"
        "abaqus.abaqus@flexlm:40|BeginTime\n"  # requeued by its prolog: waits for its time
        "(null)|Resources\n"
    )
    assert parse_demand(ARGV, pending) == {"abaqus.abaqus@flexlm": 6, "ansys.cfd@rlm": 2}
    with pytest.raises(SlurmError, match=r"expected 'licenses\|reason'"):
        parse_demand(ARGV, "abaqus.abaqus@flexlm:5\n")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("7|a@x:3|RUNNING|None", "expected 3 '|'-separated fields"),
        ("7_1|a@x:3|RUNNING", "job id '7_1' is not a number"),
        ("7|a@x:three|RUNNING", "count of a@x must be a whole number >= 0, got 'three'"),
        ("7|a@x:²|RUNNING", "count of a@x must be a whole number >= 0, got '²'"),
    ],
)
def test_unexpected_squeue_lines_raise_slurm_error_quoting_the_line(
    line: str, problem: str
) -> None:
    with pytest.raises(SlurmError) as raised:
        parse_jobs(ARGV, line + "\n")

    assert problem in str(raised.value)
    assert line in str(raised.value)
    assert str(raised.value).startswith("squeue: ")


def test_reservation_record_gives_licenses_and_end_time() -> None:
    reservation = parse_reservation(["scontrol"], SHOW_RESERVATION)

    assert reservation.name == "lm"
    assert reservation.licenses == {"abaqus.abaqus@flexlm": 5, "ansys.cfd@rlm": 2}
    assert reservation.end_time == datetime(2027, 11, 21, 14, 10, 39)
    assert not reservation.needs_renewal(datetime(2027, 1, 1))
    assert reservation.needs_renewal(datetime(2027, 11, 22) - RENEW_WHEN_LESS_THAN)


# --- against a real Slurm 22.05 ---------------------------------------------------------------


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[Slurm]:
    adapter = Slurm(SCONTROL, SQUEUE, slurm_conf=str(slurm_cluster.conf_file), timeout=20)
    yield adapter
    slurm_cluster.cancel_all_jobs()


@pytest.fixture
def reservation_name(slurm: Slurm) -> Iterator[str]:
    name = f"lm_test_{uuid.uuid4().hex[:8]}"
    yield name
    if slurm.reservation(name) is not None:
        slurm.delete_reservation(name)


@pytest.mark.slurm
def test_licenses_and_running_jobs_come_from_the_cluster(
    slurm: Slurm, slurm_cluster: SlurmCluster
) -> None:
    job_id = slurm_cluster.submit("sleep 60", licenses={"abaqus.abaqus@flexlm": 3})
    slurm_cluster.wait_for_job(job_id, "RUNNING")

    licenses = slurm.licenses()
    jobs = {job.job_id: job for job in slurm.jobs()}

    assert licenses["abaqus.abaqus@flexlm"].total == slurm_cluster.licenses["abaqus.abaqus@flexlm"]
    assert licenses["abaqus.abaqus@flexlm"].used == 3
    assert jobs[str(job_id)].state == "RUNNING"
    assert jobs[str(job_id)].licenses == {"abaqus.abaqus@flexlm": 3}


@pytest.mark.slurm
def test_array_elements_are_listed_by_their_own_job_id(
    slurm: Slurm, slurm_cluster: SlurmCluster
) -> None:
    """SLURM_JOB_ID in the prolog is an element's own id (not `base_index`): cleanup needs it."""
    slurm_cluster.submit("sleep 60", "--array=1-2", licenses={"ansys.cfd@rlm": 1})

    def two_running() -> list[SlurmJob] | None:
        running = [job for job in slurm.jobs() if job.state == "RUNNING"]
        return running if len(running) == 2 else None

    running = wait_for(two_running, 30, "both array elements to run")

    assert len({job.job_id for job in running}) == 2
    assert all(job.job_id.isdigit() for job in running)


@pytest.mark.slurm
def test_reservation_is_created_replaced_renewed_and_deleted(
    slurm: Slurm, slurm_cluster: SlurmCluster, reservation_name: str
) -> None:
    assert slurm.reservation(reservation_name) is None

    slurm.create_reservation(reservation_name, "root", {"abaqus.abaqus@flexlm": 4})
    created = slurm.reservation(reservation_name)
    assert created is not None
    assert created.licenses == {"abaqus.abaqus@flexlm": 4}
    assert created.end_time is not None
    assert created.end_time - datetime.now() > timedelta(days=360)
    assert slurm.licenses()["abaqus.abaqus@flexlm"].reserved == 4

    slurm.update_reservation(reservation_name, {"ansys.cfd@rlm": 2})
    replaced = slurm.reservation(reservation_name)
    assert replaced is not None
    assert replaced.licenses == {"ansys.cfd@rlm": 2}, "an update replaces the whole list"
    assert slurm.licenses()["abaqus.abaqus@flexlm"].reserved == 0

    slurm.update_reservation(reservation_name, {"ansys.cfd@rlm": 2}, renew=True)
    renewed = slurm.reservation(reservation_name)
    assert renewed is not None and renewed.end_time is not None
    assert renewed.end_time >= created.end_time

    slurm.delete_reservation(reservation_name)
    assert slurm.reservation(reservation_name) is None
    assert slurm.licenses()["ansys.cfd@rlm"].reserved == 0


@pytest.mark.slurm
def test_reserved_licenses_are_kept_from_jobs(
    slurm: Slurm, slurm_cluster: SlurmCluster, reservation_name: str
) -> None:
    total = slurm_cluster.licenses["ansys.cfd@rlm"]
    slurm.create_reservation(reservation_name, "root", {"ansys.cfd@rlm": total - 1})

    fits = slurm_cluster.submit("sleep 60", licenses={"ansys.cfd@rlm": 1})
    waits = slurm_cluster.submit("sleep 60", licenses={"ansys.cfd@rlm": 1})

    slurm_cluster.wait_for_job(fits, "RUNNING")
    wait_for(
        lambda: slurm_cluster.job_status(waits) == ("PENDING", "Licenses"),
        30,
        "the job to wait for licenses",
    )


@pytest.mark.slurm
def test_a_refused_scontrol_command_raises_with_command_and_stderr(
    slurm: Slurm, slurm_cluster: SlurmCluster, reservation_name: str
) -> None:
    too_many = slurm_cluster.licenses["ansys.cfd@rlm"] + 1
    slurm.create_reservation(reservation_name, "root", {"ansys.cfd@rlm": 1})

    with pytest.raises(SlurmError) as raised:
        slurm.update_reservation(reservation_name, {"ansys.cfd@rlm": too_many})

    message = str(raised.value)
    assert f"reservationname={reservation_name}" in message
    assert "Invalid license specification" in message
    with pytest.raises(SlurmError, match="Duplicate reservation name"):
        slurm.create_reservation(reservation_name, "root", {"ansys.cfd@rlm": 1})


def test_a_missing_scontrol_is_a_slurm_error_not_a_crash() -> None:
    slurm = Slurm("/nonexistent/scontrol", SQUEUE, timeout=5)

    with pytest.raises(SlurmError, match=r"/nonexistent/scontrol show lic -o: cannot run"):
        slurm.licenses()
