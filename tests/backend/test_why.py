"""GET /lm/jobs/slurm_job_id/{id}/why: why a cluster's job waits for licenses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.why import STALE
from tests.backend.pools import add_configuration, report

ABAQUS = "abaqus.abaqus"
READ = "license-manager:job:read"
AGENT = (READ, "license-manager:job:create", "license-manager:job:delete")


@pytest.fixture
def agent(auth_headers):
    """Headers of a cluster's agent (job read, create, delete)."""
    return lambda cluster="cluster-a": auth_headers(*AGENT, client_id=cluster)


def why(client, headers, slurm_job_id: str):
    return client.get(f"/lm/jobs/slurm_job_id/{slurm_job_id}/why", headers=headers)


@pytest.fixture
def shared_pool(app, post_job):
    """10 abaqus tokens: 3 in use on the server, 2 kept for desktops, 1 booked by cluster-b.
    Answers each cluster's feature id."""
    numbers = {"total": 10, "used": 3, "reserved": 2}
    features = {
        cluster: add_configuration(app, cluster, {ABAQUS: numbers})[ABAQUS]
        for cluster in ("cluster-a", "cluster-b")
    }
    assert post_job({ABAQUS: 1}, "900", cluster="cluster-b").status_code == 201
    return features


def test_the_figures_are_the_rules_pool_figures(app, client, agent, post_job, shared_pool):
    """The pool's highest fresh `used`, whichever cluster reported it; stale reports say so."""
    assert post_job({ABAQUS: 6}, "200").status_code == 409
    report(app, shared_pool["cluster-b"], used=5)

    [license] = why(client, agent(), "200").json["licenses"]
    assert (license["used"], license["free"]) == (5, 2)

    report(app, shared_pool["cluster-a"], age=timedelta(hours=1))
    body = why(client, agent(), "200").json
    assert body["explanation"] == f"licenses: abaqus.abaqus@flexlm 6 wanted, {STALE}"
    assert (body["licenses"][0]["fresh"], body["licenses"][0]["free"]) == (False, 0)


def test_a_refused_job_is_told_what_it_waits_for(client, agent, post_job, shared_pool):
    assert post_job({ABAQUS: 6}, "200").status_code == 409

    answer = why(client, agent(), "200")

    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["waiting"] is True
    assert body["explanation"] == (
        "licenses: abaqus.abaqus@flexlm 6 wanted, 4 free of 10 (3 in use on the license "
        "server, 2 reserved for desktops, 1 booked by other clusters)"
    )
    [license] = body["licenses"]
    assert {key: license[key] for key in license if key != "reported_at"} == {
        "license": "abaqus.abaqus@flexlm",
        "feature_id": shared_pool["cluster-a"],
        "wanted": 6,
        "report_status": "ok",
        "fresh": True,
        "total": 10,
        "used": 3,
        "reserved": 2,
        "booked": 1,
        "booked_by_other_clusters": 1,
        "free": 4,
    }
    assert body["last_refusal"]["reasons"] == {
        ABAQUS: {"requested": 6, "available": 4, "code": "insufficient"}
    }
    assert body["job_created_at"] is None


def test_the_figures_are_the_pools_now_and_the_refusal_the_last(
    app, client, agent, post_job, shared_pool
):
    assert post_job({ABAQUS: 6}, "200").status_code == 409
    report(app, shared_pool["cluster-a"], status="unreachable")
    assert post_job({ABAQUS: 5}, "200").status_code == 409

    body = why(client, agent(), "200").json

    assert body["explanation"] == (
        "licenses: abaqus.abaqus@flexlm 5 wanted, "
        "the license server was unreachable at the last report"
    )
    assert body["last_refusal"]["reasons"] == {
        ABAQUS: {
            "requested": 5,
            "reason": "the license server was unreachable at the last report",
            "code": "unreachable",
        }
    }


def test_a_granted_job_is_not_waiting(client, agent, post_job, shared_pool):
    assert post_job({ABAQUS: 6}, "200").status_code == 409
    assert post_job({ABAQUS: 3}, "200").status_code == 201  # requeued, asked again: granted

    body = why(client, agent(), "200").json

    assert body["waiting"] is False
    assert body["explanation"] == "not waiting for licenses: booked abaqus.abaqus@flexlm 3"
    [license] = body["licenses"]
    assert (license["wanted"], license["booked"], license["booked_by_other_clusters"]) == (3, 4, 1)
    assert body["last_refusal"]["reasons"][ABAQUS]["requested"] == 6
    assert body["job_created_at"] > body["last_refusal"]["refused_at"]


def test_a_granted_job_refused_on_its_next_prolog_waits_again(client, agent, post_job, shared_pool):
    assert post_job({ABAQUS: 2}, "200").status_code == 201
    assert post_job({ABAQUS: 9}, "200").status_code == 409  # the earlier record stays

    body = why(client, agent(), "200").json

    assert body["waiting"] is True
    assert body["explanation"].startswith("licenses: abaqus.abaqus@flexlm 9 wanted, 2 free of 10")


def test_the_jobs_end_forgets_its_refusal(client, agent, post_job, shared_pool):
    assert post_job({ABAQUS: 6}, "200").status_code == 409
    assert post_job({ABAQUS: 1}, "200").status_code == 201
    assert client.delete("/lm/jobs/slurm_job_id/200", headers=agent()).status_code == 204

    assert why(client, agent(), "200").status_code == 404


def test_unknown_job_is_404(client, agent, shared_pool):
    answer = why(client, agent(), "12345")

    assert answer.status_code == 404
    assert answer.json["message"] == "No job '12345' in cluster 'cluster-a'."


def test_another_clusters_job_is_404_and_says_nothing_of_it(client, agent, post_job, shared_pool):
    assert post_job({ABAQUS: 6}, "200").status_code == 409

    for slurm_job_id in ("200", "900"):  # refused on cluster-a; granted on cluster-b
        answer = why(client, agent("cluster-c"), slurm_job_id)
        assert answer.status_code == 404
        assert answer.json["message"] == f"No job '{slurm_job_id}' in cluster 'cluster-c'."


def test_cluster_b_sees_its_own_job(client, agent, shared_pool):
    [license] = why(client, agent("cluster-b"), "900").json["licenses"]

    assert (license["booked"], license["booked_by_other_clusters"]) == (1, 0)


@pytest.mark.parametrize("slurm_job_id", ["a%20b", "x" * 65, "1%3B2", "%00"])
def test_a_bad_slurm_job_id_is_422(client, agent, slurm_job_id):
    answer = why(client, agent(), slurm_job_id)

    assert answer.status_code == 422
    assert "slurm_job_id" in answer.json["errors"]["path"]


def test_it_needs_job_read(client, auth_headers, shared_pool):
    answer = why(client, auth_headers("license-manager:job:create"), "900")

    assert answer.status_code == 403
