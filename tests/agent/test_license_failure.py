"""Which failed jobs the epilog takes for license-starved (agent.license_failure.recognise)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.failure_settings import parse_settings
from agent.license_failure import EndedJob, recognise
from agent.slurm_env import exit_code

FLEXNET = "FlexNet Licensing error:-4,132. Licensed number of users already reached.\n"
LOG = logging.getLogger("test.license_failure")


def ended_job(tmp_path: Path, output: str = FLEXNET, **variables: str) -> EndedJob:
    (tmp_path / "slurm-77.out").write_text(output)
    environ = {
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_UID": str(os.getuid()),
        "SLURM_JOB_NAME": "cfd",
        "SLURM_JOB_LICENSES": "abaqus.abaqus@flexlm:2",
        "SLURM_JOB_EXIT_CODE2": "1:0",
        "SLURM_JOB_STDOUT": "slurm-%j.out",
        "SLURM_JOB_WORK_DIR": str(tmp_path),
        "SLURM_JOB_RESTART_COUNT": "0",
        **variables,
    }
    return EndedJob.from_environ({k: v for k, v in environ.items() if v is not None})


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"SLURM_JOB_EXIT_CODE2": "3:0", "SLURM_JOB_EXIT_CODE": "768"}, 3),
        ({"SLURM_JOB_EXIT_CODE": "768"}, 3),
        ({"SLURM_JOB_EXIT_CODE2": "0:15"}, 0),  # killed by a signal: not the script's failure
        ({"SLURM_JOB_EXIT_CODE2": "x:y", "SLURM_JOB_EXIT_CODE": "bad"}, 0),
        ({}, 0),
    ],
)
def test_exit_code_is_the_batch_scripts(variables: dict[str, str], code: int) -> None:
    assert exit_code(variables) == code


def test_license_text_in_a_failed_jobs_output_is_a_license_failure(tmp_path: Path) -> None:
    verdict = recognise(ended_job(tmp_path), parse_settings(None), LOG)

    assert verdict is not None
    assert verdict.rule == "FlexNet -4 'Licensed number of users already reached'"
    assert verdict.output_file == str(tmp_path / "slurm-77.out")
    assert (verdict.feature, verdict.requeue_off_by) == ("abaqus.abaqus", None)


@pytest.mark.parametrize(
    "variables",
    [
        {"SLURM_JOB_EXIT_CODE2": "0:0"},  # succeeded, cancelled, timed out, node failure
        {"SLURM_JOB_LICENSES": "(null)"},  # no tracked license, no rule about it
        {"SLURM_JOB_LICENSES": "matlab:1"},
    ],
)
def test_jobs_that_did_not_fail_or_hold_no_license_are_not_looked_at(
    tmp_path: Path, variables: dict[str, str]
) -> None:
    assert recognise(ended_job(tmp_path, **variables), parse_settings(None), LOG) is None


def test_the_same_exit_code_without_license_text_is_not(tmp_path: Path) -> None:
    job = ended_job(tmp_path, "Segmentation fault\n")

    assert recognise(job, parse_settings(None), LOG) is None


def test_a_not_license_failure_rule_vetoes_a_text_match(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = parse_settings(
        {"not_license_failures": [{"product": "abaqus", "pattern": "dry run"}]}
    )

    assert recognise(ended_job(tmp_path, "dry run\n" + FLEXNET), settings, LOG) is None
    assert "job 77 not requeued: FlexNet -4" in caplog.text
    assert "not_license_failures[0] matches it" in caplog.text
    # The veto needs all its conditions: another product's job is still recognised.
    other = ended_job(tmp_path, "dry run\n" + FLEXNET, SLURM_JOB_LICENSES="ansys.cfd")
    assert recognise(other, settings, LOG) is not None


def test_an_exit_code_rule_decides_alone_and_is_not_vetoed(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "rules": [{"product": "abaqus", "exit_codes": [39]}],
            "not_license_failures": [{"product": "abaqus"}],
        }
    )

    verdict = recognise(ended_job(tmp_path, "", SLURM_JOB_EXIT_CODE2="39:0"), settings, LOG)

    assert verdict is not None
    assert (verdict.rule, verdict.output_file) == ("exit code 39 (rule abaqus)", None)


def test_a_rule_by_job_name_covers_jobs_without_licenses_and_adds_patterns(
    tmp_path: Path,
) -> None:
    settings = parse_settings(
        {"rules": [{"job_name": "^starccm", "patterns": ["Power Session: no seat"]}]}
    )
    output = "Starting...\nPower Session: no seat free\n"
    job = ended_job(tmp_path, output, SLURM_JOB_LICENSES="(null)", SLURM_JOB_NAME="starccm-42")

    verdict = recognise(job, settings, LOG)

    assert verdict is not None
    assert verdict.rule == "rule job_name=^starccm 'Power Session: no seat'"
    assert verdict.feature == "job_name=^starccm"


def test_a_product_rule_can_turn_requeueing_off(tmp_path: Path) -> None:
    settings = parse_settings({"rules": [{"product": "abaqus.abaqus", "requeue": False}]})

    verdict = recognise(ended_job(tmp_path), settings, LOG)

    assert verdict is not None and verdict.requeue_off_by == "abaqus.abaqus"


def test_unreadable_output_is_logged_and_not_a_license_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = ended_job(tmp_path, SLURM_JOB_STDOUT="missing-%j.out")

    assert recognise(job, parse_settings(None), LOG) is None
    assert "job 77: output not searched: " in caplog.text
    assert "missing-77.out: No such file or directory" in caplog.text


def test_a_search_past_its_time_limit_leaves_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings({"scan_timeout": 0.000001})
    job = ended_job(tmp_path, "no license text here\n" * 100_000)

    assert recognise(job, settings, LOG) is None
    assert "job 77 not requeued: searching its output took longer than 1e-06 s" in caplog.text
