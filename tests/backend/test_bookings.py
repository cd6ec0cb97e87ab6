"""/lm/bookings: booking licenses for an existing job, reading and releasing them."""

from __future__ import annotations

import pytest

from tests.backend.pools import add_configuration

ABAQUS = "abaqus.abaqus"
AGENT = (
    "license-manager:job:create",
    "license-manager:booking:read",
    "license-manager:booking:create",
    "license-manager:booking:delete",
)


@pytest.fixture
def agent_a(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-a")


@pytest.fixture
def agent_b(auth_headers):
    return auth_headers(*AGENT, client_id="cluster-b")


@pytest.fixture
def abaqus_a(app) -> int:
    """cluster-a's abaqus.abaqus: 10 tokens, 2 used, 1 reserved for desktops."""
    return add_configuration(app, "cluster-a", {ABAQUS: {"total": 10, "used": 2, "reserved": 1}})[
        ABAQUS
    ]


def new_job(client, headers, slurm_job_id: str = "1") -> int:
    answer = client.post(
        "/lm/jobs",
        json={"slurm_job_id": slurm_job_id, "username": "u", "lead_host": "h"},
        headers=headers,
    )
    assert answer.status_code == 201
    return answer.json["id"]


def book(client, headers, job_id: int, feature_id: int, quantity: int):
    return client.post(
        "/lm/bookings",
        json={"job_id": job_id, "feature_id": feature_id, "quantity": quantity},
        headers=headers,
    )


def test_post_books_under_the_rule(client, agent_a, abaqus_a):
    job_id = new_job(client, agent_a)

    granted = book(client, agent_a, job_id, abaqus_a, 6)
    refused = book(client, agent_a, job_id, abaqus_a, 2)

    assert granted.status_code == 201
    assert {
        k: granted.json[k] for k in ("job_id", "feature_id", "product_feature", "quantity")
    } == {
        "job_id": job_id,
        "feature_id": abaqus_a,
        "product_feature": ABAQUS,
        "quantity": 6,
    }
    assert refused.status_code == 409
    assert refused.json["errors"] == {ABAQUS: {"requested": 2, "available": 1}}
    assert book(client, agent_a, job_id, abaqus_a, 1).status_code == 201


def test_bookings_of_the_job_show_on_the_job(client, agent_a, abaqus_a, auth_headers):
    job_id = new_job(client, agent_a)
    booking = book(client, agent_a, job_id, abaqus_a, 3).json

    job = client.get(f"/lm/jobs/{job_id}", headers=auth_headers()).json

    assert [b["id"] for b in job["bookings"]] == [booking["id"]]


def test_get_and_delete_release_licenses(client, agent_a, abaqus_a):
    job_id = new_job(client, agent_a)
    booking = book(client, agent_a, job_id, abaqus_a, 7).json

    shown = client.get(f"/lm/bookings/{booking['id']}", headers=agent_a)
    assert shown.status_code == 200 and shown.json == booking
    assert client.delete(f"/lm/bookings/{booking['id']}", headers=agent_a).status_code == 204

    assert client.get(f"/lm/bookings/{booking['id']}", headers=agent_a).status_code == 404
    assert book(client, agent_a, job_id, abaqus_a, 7).status_code == 201


def test_feature_of_another_cluster_is_422_as_if_unknown(app, client, agent_a, abaqus_a):
    abaqus_b = add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}})[ABAQUS]
    job_id = new_job(client, agent_a)

    answer = book(client, agent_a, job_id, abaqus_b, 1)

    # The same answer as for a feature that does not exist: other clusters do not leak.
    assert answer.status_code == 422
    assert answer.json["errors"]["json"]["feature_id"] == [f"No feature with id {abaqus_b}."]


def test_unknown_job_or_feature_is_422(client, agent_a, abaqus_a):
    job_id = new_job(client, agent_a)

    unknown_job = book(client, agent_a, 999, abaqus_a, 1)
    unknown_feature = book(client, agent_a, job_id, 999, 1)

    assert unknown_job.status_code == 422 and "job_id" in unknown_job.json["errors"]["json"]
    assert unknown_feature.status_code == 422
    assert "feature_id" in unknown_feature.json["errors"]["json"]


def test_another_clusters_job_is_403(app, client, agent_a, agent_b, abaqus_a):
    add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}})
    job_id = new_job(client, agent_a)
    booking = book(client, agent_a, job_id, abaqus_a, 1).json

    assert book(client, agent_b, job_id, abaqus_a, 1).status_code == 403
    assert client.get(f"/lm/bookings/{booking['id']}", headers=agent_b).status_code == 403
    assert client.delete(f"/lm/bookings/{booking['id']}", headers=agent_b).status_code == 403
    assert client.get("/lm/bookings", headers=agent_b).json == []


def test_list_filters_by_cluster_searches_and_sorts(app, client, agent_a, agent_b, auth_headers):
    features_a = add_configuration(
        app, "cluster-a", {ABAQUS: {"total": 10}, "ansys.cfd": {"total": 10}}
    )
    features_b = add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}}, servers=[("x", 1)])
    job_a, job_b = new_job(client, agent_a), new_job(client, agent_b)
    book(client, agent_a, job_a, features_a[ABAQUS], 1)
    book(client, agent_a, job_a, features_a["ansys.cfd"], 2)
    book(client, agent_b, job_b, features_b[ABAQUS], 3)

    def quantities(query: str, headers) -> list[int]:
        return [b["quantity"] for b in client.get(f"/lm/bookings{query}", headers=headers).json]

    assert quantities("", agent_a) == [1, 2]
    assert quantities("?sort_field=quantity&sort_order=descending", auth_headers()) == [3, 2, 1]
    assert quantities("?search=ANSYS", auth_headers()) == [2]
    assert client.get("/lm/bookings?sort_order=up", headers=agent_a).status_code == 422


@pytest.mark.parametrize(
    "payload",
    [
        {"job_id": 1, "feature_id": 1},
        {"job_id": 1, "feature_id": 1, "quantity": 0},
        {"job_id": 1, "feature_id": 1, "quantity": 2**63},
        {"job_id": "1", "feature_id": 1, "quantity": 1},
        {"job_id": 1, "feature_id": 2**31, "quantity": 1},
        {"job_id": 0, "feature_id": 1, "quantity": 1},
        {"job_id": 1, "feature_id": 1, "quantity": 1, "note": "x"},
    ],
)
def test_invalid_booking_is_422(client, agent_a, payload):
    answer = client.post("/lm/bookings", json=payload, headers=agent_a)

    assert answer.status_code == 422
    assert answer.json["errors"]["json"]


@pytest.mark.parametrize("path", ["/lm/bookings/999", "/lm/bookings/99999999999999"])
def test_unknown_booking_is_404(client, agent_a, path):
    assert client.get(path, headers=agent_a).status_code == 404
    assert client.delete(path, headers=agent_a).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("get", "/lm/bookings", "booking:read"),
        ("get", "/lm/bookings/1", "booking:read"),
        ("post", "/lm/bookings", "booking:create"),
        ("delete", "/lm/bookings/1", "booking:delete"),
    ],
)
def test_permissions(client, auth_headers, method, path, needed):
    # The same action on jobs does not stand in for it on bookings.
    others = auth_headers(
        *(
            f"license-manager:{p}"
            for p in ("job:read", "job:create", needed.replace("booking", "job"))
        )
    )
    call = getattr(client, method)
    body = {"job_id": 1, "feature_id": 1, "quantity": 1} if method == "post" else None

    assert call(path, json=body).status_code == 401
    assert call(path, json=body, headers=others).status_code == 403
    allowed = call(path, json=body, headers=auth_headers(f"license-manager:{needed}"))
    assert allowed.status_code not in (401, 403)
