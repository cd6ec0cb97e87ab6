"""`lm-agent epilog` on failed jobs, run as slurmctld runs it (no PATH, only SLURM_* variables),
against the real API: what it records, and that no output file can make it fail or hang.

The requeue itself needs a real slurmctld: tests/e2e/test_license_requeue.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from devstack.processes import free_port
from tests.agent.conftest import WriteConfig, job_env, run_agent
from tests.live_api import LiveApi

FLEXNET = "FlexNet Licensing error:-4,132. Licensed number of users already reached.\n"


def job_env_of_failed(config: Path, tmp_path: Path, job_id: str) -> dict[str, str]:
    """EpilogSlurmctld's variables for a job that exited 1 (licenses abaqus.abaqus, output
    slurm-ID.out in tmp_path)."""
    return job_env(
        config,
        job_id,
        "abaqus.abaqus@flexlm:2",
        SLURM_SCRIPT_CONTEXT="epilog_slurmctld",
        SLURM_JOB_UID=str(os.getuid()),
        SLURM_JOB_EXIT_CODE="256",
        SLURM_JOB_EXIT_CODE2="1:0",
        SLURM_JOB_WORK_DIR=str(tmp_path),
        SLURM_JOB_STDOUT="slurm-%j.out",
    )


def epilog(config: Path, tmp_path: Path, job_id: str) -> tuple[int, str, str]:
    """Run that epilog; returns its exit code, its stderr and the agent's log."""
    env = job_env_of_failed(config, tmp_path, job_id)
    log_dir = tmp_path / "slurmctld-log"
    log_dir.mkdir(exist_ok=True)
    result = run_agent("epilog", env=env, cwd=log_dir)
    log_file = tmp_path / "log" / "agent.log"
    return result.returncode, result.stderr, log_file.read_text() if log_file.exists() else ""


@pytest.fixture
def config(agent_yaml: WriteConfig, pool: LiveApi, tmp_path: Path) -> WriteConfig:
    """Writes agent.yaml with a scontrol that cannot run: Slurm refuses the requeue, the rest
    (API, files, decision) is real."""

    def write(**overrides: Any) -> Path:
        return agent_yaml(tools={"scontrol": str(tmp_path / "no-scontrol")}, **overrides)

    return write


def events(api: LiveApi) -> list[dict[str, Any]]:
    return api.admin.get_all("/lm/license_failures")


def test_a_recognised_failure_is_logged_and_recorded(
    config: WriteConfig, pool: LiveApi, tmp_path: Path
) -> None:
    (tmp_path / "slurm-501.out").write_text("solver starting\n" + FLEXNET)

    code, stderr, log = epilog(config(), tmp_path, "501")

    assert code == 0 and "Traceback" not in stderr
    assert "job 501 released" in log
    line = next(line for line in log.splitlines() if "job 501 left failed" in line)
    assert "(requeue refused by Slurm: cannot run" in line
    assert f"FlexNet -4 'Licensed number of users already reached' in {tmp_path}/slurm-501.out" in (
        line
    )
    [event] = events(pool)
    assert {k: event[k] for k in ("slurm_job_id", "username", "feature", "action")} == {
        "slurm_job_id": "501",
        "username": "alice",
        "feature": "abaqus.abaqus",
        "action": "left_failed",
    }
    assert event["matched_rule"] == "FlexNet -4 'Licensed number of users already reached'"
    assert event["output_file"] == str(tmp_path / "slurm-501.out")
    assert event["reason"].startswith("requeue refused by Slurm")


def test_requeue_turned_off_for_a_product_is_recorded_with_the_reason(
    config: WriteConfig, pool: LiveApi, tmp_path: Path
) -> None:
    path = config(license_failures={"rules": [{"product": "abaqus", "requeue": False}]})
    (tmp_path / "slurm-502.out").write_text(FLEXNET)

    code, _, log = epilog(path, tmp_path, "502")

    assert code == 0
    assert "job 502 left failed (requeue turned off for abaqus): FlexNet -4" in log
    assert [e["reason"] for e in events(pool)] == ["requeue turned off for abaqus"]


def test_turned_off_globally_the_epilog_does_not_look(
    config: WriteConfig, pool: LiveApi, tmp_path: Path
) -> None:
    path = config(license_failures={"requeue": False})
    (tmp_path / "slurm-503.out").write_text(FLEXNET)

    code, _, log = epilog(path, tmp_path, "503")

    assert code == 0 and "job 503 released" in log
    assert "503 left failed" not in log and events(pool) == []


def test_a_failed_job_without_licenses_or_rules_needs_no_config(tmp_path: Path) -> None:
    env = job_env(tmp_path / "no-such.yaml", "504", None, SLURM_JOB_EXIT_CODE2="1:0")

    result = run_agent("epilog", env=env, cwd=tmp_path)

    assert result.returncode == 0
    assert "configuration error" in result.stderr  # said once; nothing else happens


def huge(path: Path) -> None:
    with path.open("wb") as stream:
        stream.truncate(4 * 1024**3)  # sparse: reading it whole would take seconds and memory
        stream.seek(0, os.SEEK_END)
        stream.write(b"\n" + FLEXNET.encode())


BAD_OUTPUTS = {
    "huge": (huge, "FlexNet -4"),
    "binary": (lambda p: p.write_bytes(os.urandom(200_000)), None),
    "missing": (lambda p: None, "No such file or directory"),
    "directory": (lambda p: p.mkdir(), "not a regular file"),
    "fifo": (os.mkfifo, "not a regular file"),
    "symlink": (lambda p: p.symlink_to("/etc/shadow"), "symbolic link"),
    "other owner": (
        lambda p: (p.write_text(FLEXNET), os.chown(p, 65534, 65534)),
        "not the job's uid",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_OUTPUTS))
def test_bad_output_files_never_fail_the_epilog(
    config: WriteConfig, pool: LiveApi, tmp_path: Path, kind: str
) -> None:
    make, logged = BAD_OUTPUTS[kind]
    make(tmp_path / "slurm-505.out")

    code, stderr, log = epilog(config(), tmp_path, "505")

    assert code == 0
    assert "Traceback" not in stderr + log
    assert "job 505 released" in log
    if logged:
        assert logged in log


def test_files_outside_the_allowed_folders_are_not_read(
    config: WriteConfig, pool: LiveApi, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path = config(license_failures={"output_folders": [str(scratch)]})
    (tmp_path / "slurm-506.out").write_text(FLEXNET)

    code, stderr, log = epilog(path, tmp_path, "506")

    assert code == 0 and "Traceback" not in stderr
    assert "outside the allowed folders" in log
    assert events(pool) == []


def test_without_the_api_slurms_restart_count_bounds_the_requeues(
    agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    """No endless loop when the API is down: the restart count (>= our requeues) is used."""
    path = agent_yaml(
        api_url=f"http://127.0.0.1:{free_port()}",
        tools={"scontrol": str(tmp_path / "no-scontrol")},
    )
    (tmp_path / "slurm-507.out").write_text(FLEXNET)
    env = {**job_env_of_failed(path, tmp_path, "507"), "SLURM_JOB_RESTART_COUNT": "3"}

    result = run_agent("epilog", env=env, cwd=tmp_path)

    log = (tmp_path / "log" / "agent.log").read_text()
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "job 507: earlier requeues unknown (" in log
    assert "job 507 left failed (requeue limit 3 reached): FlexNet -4" in log
    assert "job 507: license failure not recorded in the API: " in log
