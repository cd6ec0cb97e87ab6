"""/lm/jobs: recording, reading and deleting jobs, per cluster."""

from __future__ import annotations

import json

import pytest

from tests.backend.pools import add_configuration

ABAQUS = "abaqus.abaqus"
AGENT = (
    "license-manager:job:read",
    "license-manager:job:create",
    "license-manager:job:delete",
)


def job_payload(slurm_job_id: str = "123", **overrides) -> dict:
    return {"slurm_job_id": slurm_job_id, "username": "user123", "lead_host": "host1", **overrides}


@pytest.fixture
def agent_a(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-a")


@pytest.fixture
def agent_b(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-b")


def create(client, headers, slurm_job_id: str = "123", **overrides) -> dict:
    answer = client.post("/lm/jobs", json=job_payload(slurm_job_id, **overrides), headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def test_post_records_the_job_of_the_tokens_cluster(client, agent_a):
    answer = client.post("/lm/jobs", json=job_payload(), headers=agent_a)

    assert answer.status_code == 201
    job = answer.json
    assert {k: job[k] for k in ("slurm_job_id", "cluster_client_id", "username", "lead_host")} == {
        "slurm_job_id": "123",
        "cluster_client_id": "cluster-a",
        "username": "user123",
        "lead_host": "host1",
    }
    assert job["bookings"] == [] and job["untracked"] == []
    assert (
        client.get(f"/lm/jobs/{job['id']}", headers=agent_a).json["created_at"]
        == (job["created_at"])
    )


def test_admin_posts_for_a_named_cluster(client, auth_headers):
    job = create(client, auth_headers(), cluster_client_id="cluster-b")

    assert job["cluster_client_id"] == "cluster-b"


def test_posting_for_another_cluster_is_403(client, agent_a):
    answer = client.post(
        "/lm/jobs", json=job_payload(cluster_client_id="cluster-b"), headers=agent_a
    )

    assert answer.status_code == 403
    assert client.get("/lm/jobs", headers=agent_a).json == []


def test_job_shows_its_bookings(app, client, agent_a):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    job = create(client, agent_a, bookings=[{"product_feature": ABAQUS, "quantity": 2}])

    shown = client.get(f"/lm/jobs/{job['id']}", headers=agent_a).json

    [booking] = shown["bookings"]
    assert {k: booking[k] for k in ("job_id", "feature_id", "product_feature", "quantity")} == {
        "job_id": job["id"],
        "feature_id": feature_id,
        "product_feature": ABAQUS,
        "quantity": 2,
    }


def test_lists_show_only_the_callers_cluster_unless_admin(client, agent_a, agent_b, auth_headers):
    create(client, agent_a, "1")
    create(client, agent_b, "2")

    def slurm_ids(path, headers):
        return [job["slurm_job_id"] for job in client.get(path, headers=headers).json]

    assert slurm_ids("/lm/jobs", agent_a) == ["1"]
    assert slurm_ids("/lm/jobs/by_client_id", agent_b) == ["2"]
    assert slurm_ids("/lm/jobs", auth_headers()) == ["1", "2"]
    # by_client_id is the token's cluster even for an admin.
    assert slurm_ids("/lm/jobs/by_client_id", auth_headers(client_id="cluster-b")) == ["2"]


def test_list_search_sort_and_pages(client, agent_a):
    for slurm_job_id, user in (("1", "alice"), ("2", "bob"), ("3", "albert")):
        create(client, agent_a, slurm_job_id, username=user)

    found = client.get("/lm/jobs?search=AL&sort_field=username", headers=agent_a).json
    assert [job["username"] for job in found] == ["albert", "alice"]

    page = client.get(
        "/lm/jobs?sort_field=slurm_job_id&sort_order=descending&page=2&page_size=2",
        headers=agent_a,
    )
    assert [job["slurm_job_id"] for job in page.json] == ["1"]
    assert json.loads(page.headers["X-Pagination"])["total"] == 3

    bad_sort = client.get("/lm/jobs?sort_field=secret", headers=agent_a)
    assert bad_sort.status_code == 422


def test_another_clusters_job_is_403(client, agent_a, agent_b):
    job = create(client, agent_a)

    assert client.get(f"/lm/jobs/{job['id']}", headers=agent_b).status_code == 403
    assert client.delete(f"/lm/jobs/{job['id']}", headers=agent_b).status_code == 403
    assert client.get(f"/lm/jobs/{job['id']}", headers=agent_a).status_code == 200


def test_delete_by_id_releases_the_bookings(app, client, agent_a, auth_headers):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})
    job = create(client, agent_a, "1", bookings=[{"product_feature": ABAQUS, "quantity": 10}])

    assert client.delete(f"/lm/jobs/{job['id']}", headers=agent_a).status_code == 204

    assert client.get(f"/lm/jobs/{job['id']}", headers=agent_a).status_code == 404
    assert client.get("/lm/bookings", headers=auth_headers()).json == []
    create(client, agent_a, "2", bookings=[{"product_feature": ABAQUS, "quantity": 10}])


def test_slurm_job_id_endpoints_act_on_the_callers_cluster(client, agent_a, agent_b):
    job_a = create(client, agent_a, "77")
    job_b = create(client, agent_b, "77")

    assert client.get("/lm/jobs/slurm_job_id/77", headers=agent_a).json["id"] == job_a["id"]
    assert client.delete("/lm/jobs/slurm_job_id/77", headers=agent_b).status_code == 204

    assert client.get(f"/lm/jobs/{job_a['id']}", headers=agent_a).status_code == 200
    assert client.get("/lm/jobs/slurm_job_id/77", headers=agent_b).status_code == 404
    assert client.delete(f"/lm/jobs/{job_b['id']}", headers=agent_b).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/lm/jobs/999", "/lm/jobs/99999999999999", "/lm/jobs/slurm_job_id/999"],
)
def test_unknown_job_is_404(client, agent_a, path):
    for method in (client.get, client.delete):
        answer = method(path, headers=agent_a)
        assert answer.status_code == 404
        assert answer.json["message"]


@pytest.mark.parametrize(
    "payload",
    [
        job_payload(slurm_job_id=""),
        job_payload(slurm_job_id="12 3"),
        job_payload(slurm_job_id="1" * 65),
        job_payload(slurm_job_id=123),
        job_payload(username=""),
        job_payload(lead_host="x" * 256),
        job_payload(cluster_client_id=""),
        job_payload(bookings="abaqus.abaqus:2"),
        job_payload(bookings=[{"product_feature": ABAQUS, "quantity": 1}] * 101),
        job_payload(colour="blue"),
        {"username": "u", "lead_host": "h"},
        [],
    ],
)
def test_invalid_job_is_422(client, agent_a, payload):
    answer = client.post("/lm/jobs", json=payload, headers=agent_a)

    assert answer.status_code == 422
    assert answer.json["errors"]


def test_array_and_heterogeneous_job_ids_are_accepted(client, agent_a):
    assert create(client, agent_a, "1234_7")["slurm_job_id"] == "1234_7"
    assert create(client, agent_a, "1240+1")["slurm_job_id"] == "1240+1"


def test_not_json_is_an_error_not_a_crash(client, agent_a):
    answer = client.post(
        "/lm/jobs", data="{not json", headers={**agent_a, "Content-Type": "application/json"}
    )

    assert answer.status_code in (400, 422)
    assert answer.json["code"] == answer.status_code


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("get", "/lm/jobs", "job:read"),
        ("get", "/lm/jobs/by_client_id", "job:read"),
        ("get", "/lm/jobs/1", "job:read"),
        ("get", "/lm/jobs/slurm_job_id/1", "job:read"),
        ("post", "/lm/jobs", "job:create"),
        ("delete", "/lm/jobs/1", "job:delete"),
        ("delete", "/lm/jobs/slurm_job_id/1", "job:delete"),
    ],
)
def test_permissions(client, auth_headers, method, path, needed):
    everything_else = [
        f"license-manager:{permission}"
        for permission in ("job:read", "job:create", "job:delete", "booking:create")
        if permission != needed
    ]
    call = getattr(client, method)
    body = job_payload() if method == "post" else None

    assert call(path, json=body).status_code == 401
    denied = call(path, json=body, headers=auth_headers(*everything_else))
    assert denied.status_code == 403
    assert needed in denied.json["message"]
    allowed = call(path, json=body, headers=auth_headers(f"license-manager:{needed}"))
    assert allowed.status_code not in (401, 403)


def test_answers_keep_the_documented_field_order(client, auth_headers):
    """`id` first, then the fields as docs/architecture.md lists them, not sorted by name."""
    headers = auth_headers("license-manager:job:create", client_id="cluster-a")
    body = {"slurm_job_id": "77", "username": "alice", "lead_host": "n1", "bookings": []}
    answer = client.post("/lm/jobs", json=body, headers=headers)
    assert answer.status_code == 201
    assert list(json.loads(answer.data))[:3] == ["id", "slurm_job_id", "cluster_client_id"]
