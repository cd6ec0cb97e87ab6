"""The Slurm harness is real: jobs run, licenses are counted, reservations and stop() behave."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.processes import is_alive, pids_with_environment, read_pid
from devstack.slurm import MARKER_VARIABLE, SlurmCluster, SlurmError

pytestmark = pytest.mark.slurm

ABAQUS = "abaqus.abaqus@flexlm"


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The session cluster with an empty queue before and after each test."""
    slurm_cluster.cancel_all_jobs()
    yield slurm_cluster
    slurm_cluster.cancel_all_jobs()


@pytest.fixture
def searchable_tmp_path() -> Iterator[Path]:
    """A folder munged accepts (pytest's tmp_path sits under a 0700 folder, munged refuses it)."""
    root = Path(tempfile.mkdtemp(prefix="lm-test-slurm-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def held_job(cluster: SlurmCluster, licenses: dict[str, int]) -> Iterator[int]:
    """A running job holding `licenses` until the block ends; then it completes on its own."""
    job = cluster.submit_held(licenses=licenses)
    try:
        cluster.wait_for_job(job.job_id, "RUNNING")
        yield job.job_id
    finally:
        job.release()
    cluster.wait_for_job(job.job_id, "COMPLETED")


def test_job_with_licenses_runs_counts_them_and_completes(cluster: SlurmCluster) -> None:
    with held_job(cluster, {ABAQUS: 3}):
        assert cluster.license_usage()[ABAQUS]["Used"] == 3
    assert cluster.license_usage()[ABAQUS]["Used"] == 0


def test_job_asking_more_than_free_licenses_pends_for_licenses_until_they_free_up(
    cluster: SlurmCluster,
) -> None:
    total = cluster.licenses[ABAQUS]
    with held_job(cluster, {ABAQUS: total - 1}):
        waiting = cluster.submit("true", licenses={ABAQUS: 2})
        assert cluster.wait_for_reason(waiting) == "Licenses"
        assert cluster.job_state(waiting) == "PENDING"
    cluster.wait_for_job(waiting, "COMPLETED")


def test_set_licenses_changes_the_totals_slurm_reports(cluster: SlurmCluster) -> None:
    original = dict(cluster.licenses)
    try:
        cluster.set_licenses({**original, ABAQUS: 42, "lsdyna.mppdyna@lsdyna": 7})
        usage = cluster.license_usage()
        assert usage[ABAQUS]["Total"] == 42
        assert usage["lsdyna.mppdyna@lsdyna"]["Total"] == 7
    finally:
        cluster.set_licenses(original)
    assert "lsdyna.mppdyna@lsdyna" not in cluster.license_usage()


def test_license_only_reservation_reserves_tokens(cluster: SlurmCluster) -> None:
    cluster.run(
        "scontrol", "create", "reservation", "reservationname=harness_test",
        f"licenses={ABAQUS}:4", "starttime=now", "duration=infinite",
        "flags=license_only", "users=root",
    )  # fmt: skip
    try:
        assert cluster.license_usage()[ABAQUS]["Reserved"] == 4
        total = cluster.licenses[ABAQUS]
        too_many = cluster.submit("true", licenses={ABAQUS: total - 3})
        assert cluster.wait_for_reason(too_many) == "Licenses"
    finally:
        cluster.run("scontrol", "delete", "reservationname=harness_test")
    assert cluster.license_usage()[ABAQUS]["Reserved"] == 0
    cluster.wait_for_job(too_many, "COMPLETED")


def test_second_cluster_runs_beside_the_first_and_stop_leaves_nothing(
    cluster: SlurmCluster, searchable_tmp_path: Path
) -> None:
    other = SlurmCluster(searchable_tmp_path, licenses={ABAQUS: 1})
    other.start()
    try:
        assert other.conf_file != cluster.conf_file
        assert other.license_usage()[ABAQUS]["Total"] == 1
        long_job = other.submit("sleep 300", licenses={ABAQUS: 1})
        other.wait_for_job(long_job, "RUNNING")
        with held_job(cluster, {ABAQUS: 2}):
            assert cluster.license_usage()[ABAQUS]["Used"] == 2
        daemon_pids = [
            read_pid(other.root / "run" / f"{name}.pid") for name in ("slurmctld", "slurmd")
        ]
        daemon_pids.append(read_pid(other.munge.pid_file))
        assert all(pid is not None and is_alive(pid) for pid in daemon_pids)
    finally:
        other.stop()
    assert not any(is_alive(pid) for pid in daemon_pids if pid is not None)
    assert list(pids_with_environment(MARKER_VARIABLE, str(other.root))) == []
    with pytest.raises(SlurmError):
        other.run("squeue")
    # The session cluster did not notice.
    assert cluster.job_status(cluster.submit("true")) is not None
