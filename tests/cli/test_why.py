"""`lm-cli jobs why SLURM_JOB_ID`: why a job of the caller's cluster waits, against the real API."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CliRunner, report_usage, set_up_pool
from tests.live_api import LiveApi


@pytest.fixture
def cluster_a(live_api: LiveApi) -> str:
    """A token of cluster-a's agent (the jobs' cluster)."""
    return live_api.token("license-manager:job:read", client_id="cluster-a")


@pytest.fixture
def refused_job(live_api: LiveApi, lm_cli: CliRunner) -> None:
    """Slurm job 78 of cluster-a refused 6 of abaqus.abaqus (10 total, 3 used, 2 reserved)."""
    set_up_pool(lm_cli)
    report_usage(live_api, total=10, used=3)
    job = {
        "slurm_job_id": "78",
        "username": "alice",
        "lead_host": "node01",
        "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 6}],
    }
    answer = live_api.call("POST", "/jobs", live_api.token(client_id="cluster-a"), json=job)
    assert answer.status_code == 409, answer.text


@pytest.mark.usefixtures("refused_job")
def test_why_prints_the_explanation_the_pool_and_the_refusal(lm_cli: CliRunner, cluster_a: str):
    shown = lm_cli("jobs", "why", "78", LM_TOKEN=cluster_a)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        "job 78 of cluster-a: licenses: abaqus.abaqus@flexlm 6 wanted, 5 free of 10 "
        "(3 in use on the license server, 2 reserved for desktops)"
    )
    assert lines[1] == (
        "  abaqus.abaqus@flexlm: 6 wanted; now total 10, used 3, reserved 2, booked 0, "
        "booked by other clusters 0, free 5"
    )
    assert lines[2].startswith("last refused ")
    assert lines[3] == "  abaqus.abaqus: 6 requested, 5 available"

    as_json = lm_cli("jobs", "why", "78", "--json", LM_TOKEN=cluster_a).json()
    assert as_json["waiting"] is True
    assert as_json["licenses"][0]["free"] == 5


@pytest.mark.usefixtures("refused_job")
def test_why_of_an_unknown_or_another_clusters_job_is_not_found(
    live_api: LiveApi, lm_cli: CliRunner, cluster_a: str
):
    unknown = lm_cli("jobs", "why", "79", LM_TOKEN=cluster_a)
    other = lm_cli(
        "jobs", "why", "78", LM_TOKEN=live_api.token("license-manager:job:read", client_id="b")
    )
    for result in (unknown, other):
        assert result.returncode == 1
        assert result.stderr.startswith("lm-cli: error: 404 Not Found: ")


def test_why_of_a_malformed_id_is_the_apis_422(lm_cli: CliRunner, cluster_a: str):
    result = lm_cli("jobs", "why", "7 8", LM_TOKEN=cluster_a)
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 422 ")
