"""/lm/license_failures: the epilog records license-starved jobs; people list them per cluster."""

from __future__ import annotations

import pytest

AGENT = ("license-manager:license-failure:read", "license-manager:license-failure:create")


def event(slurm_job_id: str = "123", **overrides) -> dict:
    return {
        "slurm_job_id": slurm_job_id,
        "username": "user123",
        "feature": "abaqus.abaqus",
        "matched_rule": "FlexNet -4 'Licensed number of users already reached'",
        "output_file": "/home/user123/slurm-123.out",
        "action": "requeued",
        "requeue_count": 1,
        "reason": "requeue 1 of 3",
        **overrides,
    }


@pytest.fixture
def agent_a(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-a")


@pytest.fixture
def agent_b(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-b")


def record(client, headers, *args, **overrides) -> dict:
    answer = client.post("/lm/license_failures", json=event(*args, **overrides), headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def test_agent_records_an_event_of_its_own_cluster(client, agent_a):
    recorded = record(client, agent_a)

    assert recorded["cluster_client_id"] == "cluster-a"
    assert recorded["created_at"]
    shown = client.get(f"/lm/license_failures/{recorded['id']}", headers=agent_a)
    assert shown.status_code == 200
    assert {k: shown.json[k] for k in event()} == event()


def test_clusters_see_only_their_own_events_and_admin_sees_all(
    client, agent_a, agent_b, auth_headers
):
    mine = record(client, agent_a, "1")
    theirs = record(client, agent_b, "2")

    assert [e["id"] for e in client.get("/lm/license_failures", headers=agent_a).json] == [
        mine["id"]
    ]
    assert client.get(f"/lm/license_failures/{theirs['id']}", headers=agent_a).status_code == 403
    everything = client.get("/lm/license_failures", headers=auth_headers()).json
    assert {e["cluster_client_id"] for e in everything} == {"cluster-a", "cluster-b"}


def test_posting_for_another_cluster_is_403(client, agent_a):
    answer = client.post(
        "/lm/license_failures", json=event(cluster_client_id="cluster-b"), headers=agent_a
    )
    assert answer.status_code == 403


def test_reading_needs_the_permission(client, auth_headers):
    job_reader = auth_headers("license-manager:job:read")
    assert client.get("/lm/license_failures", headers=job_reader).status_code == 403
    assert client.get("/lm/license_failures").status_code == 401


def test_exact_filters_count_one_jobs_requeues(client, agent_a):
    record(client, agent_a, "12")
    record(client, agent_a, "123")
    record(client, agent_a, "123", action="left_failed", requeue_count=3, reason="limit 3 reached")

    answer = client.get(
        "/lm/license_failures",
        query_string={"slurm_job_id": "123", "action": "requeued"},
        headers=agent_a,
    )
    assert [(e["slurm_job_id"], e["action"]) for e in answer.json] == [("123", "requeued")]


def test_search_sort_and_pages(client, agent_a):
    for job, feature in (("1", "abaqus.abaqus"), ("2", "ansys.cfd"), ("3", "abaqus.cae")):
        record(client, agent_a, job, feature=feature)

    found = client.get("/lm/license_failures?search=ABAQUS&sort_field=feature", headers=agent_a)
    assert [e["feature"] for e in found.json] == ["abaqus.abaqus", "abaqus.cae"]
    page = client.get(
        "/lm/license_failures?sort_field=slurm_job_id&sort_order=descending&page=2&page_size=2",
        headers=agent_a,
    )
    assert [e["slurm_job_id"] for e in page.json] == ["1"]
    assert '"total": 3' in page.headers["X-Pagination"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"action": "exploded"}, "action"),
        ({"slurm_job_id": "12 3"}, "slurm_job_id"),
        ({"requeue_count": -1}, "requeue_count"),
        ({"reason": ""}, "reason"),
        ({"matched_rule": "x" * 512}, "matched_rule"),
        ({"feature": "aba\x00qus"}, "feature"),
    ],
)
def test_bad_events_are_422_naming_the_field(client, agent_a, overrides, field):
    answer = client.post("/lm/license_failures", json=event(**overrides), headers=agent_a)

    assert answer.status_code == 422
    assert field in answer.json["errors"]["json"]


@pytest.mark.parametrize(
    "query", ["sort_field=nope", "action=exploded", "slurm_job_id=%00", "page=0"]
)
def test_bad_list_queries_are_422(client, agent_a, query):
    assert client.get(f"/lm/license_failures?{query}", headers=agent_a).status_code == 422


def test_unknown_id_is_404(client, agent_a):
    assert client.get("/lm/license_failures/999999", headers=agent_a).status_code == 404
