"""Jobs (posted by the prolog) and bookings as an admin inspects and cleans them with lm-cli."""

from __future__ import annotations

import pytest

from tests.cli.conftest import (
    CliRunner,
    LiveApi,
    nested_rows,
    report_usage,
    set_up_pool,
    shown_fields,
    table_rows,
)


@pytest.fixture
def booked_job(api: LiveApi, lm_cli: CliRunner) -> None:
    """Slurm job 77 of cluster-a holding 2 of abaqus.abaqus (10 total, 3 used, 2 reserved)."""
    set_up_pool(lm_cli)
    report_usage(api, total=10, used=3)
    job = {
        "slurm_job_id": "77",
        "username": "alice",
        "lead_host": "node01",
        "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 2}],
    }
    answer = api.call("POST", "/jobs", api.token(client_id="cluster-a"), json=job)
    assert answer.status_code == 201, answer.text


@pytest.mark.usefixtures("booked_job")
def test_jobs_list_and_show_by_either_id(lm_cli: CliRunner):
    [row] = table_rows(lm_cli("jobs", "list", "--search", "alice"))
    assert (row["SLURM JOB"], row["USER"], row["BOOKINGS"]) == ("77", "alice", "abaqus.abaqus:2")

    by_id = lm_cli("jobs", "show", "1")
    by_slurm_id = lm_cli("jobs", "show", "--slurm-job-id", "77")
    assert by_id.stdout == by_slurm_id.stdout
    assert shown_fields(by_id)["LEAD HOST"] == "node01"
    [booking] = nested_rows(by_id, "Bookings")
    assert (booking["PRODUCT.FEATURE"], booking["QUANTITY"]) == ("abaqus.abaqus", "2")


@pytest.mark.usefixtures("booked_job")
def test_deleting_a_job_frees_its_licenses(lm_cli: CliRunner):
    deleted = lm_cli("jobs", "delete", "--slurm-job-id", "77")
    assert (deleted.returncode, deleted.stdout) == (0, "deleted job with slurm-job-id 77\n")
    assert lm_cli("bookings", "list").stdout == "no bookings\n"
    [feature] = table_rows(lm_cli("features", "list"))
    assert (feature["BOOKED"], feature["AVAILABLE"]) == ("0", "5")

    gone = lm_cli("jobs", "show", "--slurm-job-id", "77")
    assert gone.returncode == 1
    assert gone.stderr.startswith("lm-cli: error: 404 Not Found: ")


@pytest.mark.usefixtures("booked_job")
def test_booking_round_trip(lm_cli: CliRunner):
    created = lm_cli("bookings", "create", "--job-id", "1", "--feature-id", "1", "--quantity", "3")
    assert shown_fields(created)["QUANTITY"] == "3"
    assert [row["QUANTITY"] for row in table_rows(lm_cli("bookings", "list"))] == ["2", "3"]
    [feature] = table_rows(lm_cli("features", "list"))
    assert (feature["BOOKED"], feature["AVAILABLE"]) == ("5", "0")

    assert lm_cli("bookings", "delete", "2").stdout == "deleted booking 2\n"
    assert lm_cli("bookings", "show", "2").returncode == 1


@pytest.mark.usefixtures("booked_job")
def test_refused_booking_is_one_line_saying_what_is_available(lm_cli: CliRunner):
    result = lm_cli("bookings", "create", "--job-id", "1", "--feature-id", "1", "--quantity", "50")
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 409 Conflict: ")
    assert "abaqus.abaqus: 50 requested, 3 available" in result.stderr
    assert result.stderr.count("abaqus.abaqus") == 1  # the field errors are not repeated
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.usefixtures("booked_job")
def test_another_clusters_job_is_forbidden(api: LiveApi, lm_cli: CliRunner):
    other_cluster = api.token("license-manager:job:read", client_id="cluster-b")
    result = lm_cli("jobs", "show", "1", LM_TOKEN=other_cluster)
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 403 Forbidden: ")
    assert "cluster-b" in result.stderr


def test_license_failures_list_and_show(api: LiveApi, lm_cli: CliRunner):
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
    answer = api.call("POST", "/license_failures", api.token(client_id="cluster-a"), json=event)
    assert answer.status_code == 201, answer.text

    [row] = table_rows(lm_cli("license-failures", "list", "--search", "bob"))
    assert (row["SLURM JOB"], row["ACTION"], row["REQUEUES"]) == ("88", "requeued", "1")
    assert row["MATCHED"] == "FlexNet -4 'Licensed number of users already reached'"
    assert shown_fields(lm_cli("license-failures", "show", "1"))["REASON"] == "requeue 1 of 3"
    assert lm_cli("license-failures", "delete", "1").returncode == 2  # history: no delete
