"""Jobs (posted by the prolog) and bookings: read-only in lm-cli, as the users' guide says."""

from __future__ import annotations

import pytest

from tests.cli.conftest import (
    CliRunner,
    nested_rows,
    report_usage,
    set_up_pool,
    shown_fields,
    table_rows,
)
from tests.live_api import LiveApi


@pytest.fixture
def booked_job(live_api: LiveApi, lm_cli: CliRunner) -> None:
    """Slurm job 77 of cluster-a holding 2 of abaqus.abaqus (10 total, 3 used, 2 reserved)."""
    set_up_pool(lm_cli)
    report_usage(live_api, total=10, used=3)
    job = {
        "slurm_job_id": "77",
        "username": "alice",
        "lead_host": "node01",
        "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 2}],
    }
    answer = live_api.call("POST", "/jobs", live_api.token(client_id="cluster-a"), json=job)
    assert answer.status_code == 201, answer.text


@pytest.mark.usefixtures("booked_job")
def test_jobs_list_and_get_one_by_either_id(lm_cli: CliRunner):
    [row] = table_rows(lm_cli("jobs", "list", "--search", "alice"))
    assert (row["SLURM JOB"], row["USER"], row["BOOKINGS"]) == ("77", "alice", "abaqus.abaqus:2")

    by_id = lm_cli("jobs", "get-one", "--id", "1")
    by_slurm_id = lm_cli("jobs", "get-one", "--slurm-job-id", "77")
    assert by_id.stdout == by_slurm_id.stdout == lm_cli("jobs", "show", "1").stdout
    assert shown_fields(by_id)["LEAD HOST"] == "node01"
    [booking] = nested_rows(by_id, "Bookings")
    assert (booking["PRODUCT.FEATURE"], booking["QUANTITY"]) == ("abaqus.abaqus", "2")


@pytest.mark.usefixtures("booked_job")
def test_bookings_list_and_get_one(lm_cli: CliRunner):
    [row] = table_rows(lm_cli("bookings", "list", "--search", "abaqus"))
    assert (row["JOB"], row["PRODUCT.FEATURE"], row["QUANTITY"]) == ("1", "abaqus.abaqus", "2")
    shown = lm_cli("bookings", "get-one", "--id", row["ID"])
    assert shown_fields(shown)["QUANTITY"] == "2"
    gone = lm_cli("bookings", "get-one", "--id", "99")
    assert gone.returncode == 1 and gone.stderr.startswith("lm-cli: error: 404 Not Found: ")


@pytest.mark.parametrize(
    "command",
    [
        ["jobs", "delete", "--id", "1"],
        ["jobs", "create"],
        ["bookings", "create", "--job-id", "1", "--feature-id", "1", "--quantity", "1"],
        ["bookings", "delete", "--id", "1"],
    ],
)
def test_jobs_and_bookings_are_read_only(lm_cli: CliRunner, command: list[str]):
    result = lm_cli(*command)
    assert result.returncode == 2
    assert f"invalid choice: '{command[1]}'" in result.stderr


@pytest.mark.usefixtures("booked_job")
def test_another_clusters_job_is_forbidden(live_api: LiveApi, lm_cli: CliRunner):
    other_cluster = live_api.token("license-manager:job:read", client_id="cluster-b")
    result = lm_cli("jobs", "get-one", "--id", "1", LM_TOKEN=other_cluster)
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 403 Forbidden: ")
    assert "cluster-b" in result.stderr


def test_license_failures_list_and_show(live_api: LiveApi, lm_cli: CliRunner):
    event = {
        "slurm_job_id": "88",
        "username": "bob",
        "feature": "abaqus.abaqus",
        "matched_rule": "FlexNet -4 'Licensed number of users already reached'",
        "output_file": "/home/bob/slurm-88.out",
        "action": "requeued",
        "requeue_count": 1,
        "reason": "requeue 1 of 3",
    }
    answer = live_api.call(
        "POST", "/license_failures", live_api.token(client_id="cluster-a"), json=event
    )
    assert answer.status_code == 201, answer.text

    [row] = table_rows(lm_cli("license-failures", "list", "--search", "bob"))
    assert (row["SLURM JOB"], row["ACTION"], row["REQUEUES"]) == ("88", "requeued", "1")
    assert row["MATCHED"] == "FlexNet -4 'Licensed number of users already reached'"
    assert shown_fields(lm_cli("license-failures", "show", "1"))["REASON"] == "requeue 1 of 3"
    assert lm_cli("license-failures", "delete", "1").returncode == 2  # history: no delete
