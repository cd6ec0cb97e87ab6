"""A pool cannot be split or inflated by one cluster: two clusters on one license server.

Everything goes through the API as the clusters' agents and an admin would use it: products are
one catalogue without regard to case, and the pool's figures come conservatively from every
member's fresh report (lowest total, highest used, highest reserved).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.backend.pools import report

SERVER = {"host": "licserv1", "port": 27000}
AGENT = ("license-manager:feature:update", "license-manager:job:create")


@pytest.fixture
def admin(auth_headers):
    return auth_headers()


def configure(client, admin, cluster: str, product: str, feature: str) -> int:
    """A configuration of `cluster` on the shared server with one feature; its id."""
    config = client.post(
        "/lm/configurations",
        json={"name": cluster, "cluster_client_id": cluster, "grace_time": 60, "type": "flexlm"},
        headers=admin,
    ).json
    client.post("/lm/license_servers", json={"config_id": config["id"], **SERVER}, headers=admin)
    products = client.get("/lm/products", headers=admin).json
    found = [p for p in products if p["name"].lower() == product.lower()]
    product_id = (
        found[0]["id"]
        if found
        else client.post("/lm/products", json={"name": product}, headers=admin).json["id"]
    )
    created = client.post(
        "/lm/features",
        json={"name": feature, "config_id": config["id"], "product_id": product_id},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    return created.json["id"]


def agent_report(client, auth_headers, cluster: str, product: str, feature: str, **numbers):
    answer = client.put(
        "/lm/features/by_client_id",
        json=[{"product_name": product, "feature_name": feature, **numbers}],
        headers=auth_headers(*AGENT, client_id=cluster),
    )
    assert answer.status_code == 200, answer.json
    return answer.json[0]


def post_job(client, auth_headers, cluster: str, name: str, quantity: int, job: str):
    return client.post(
        "/lm/jobs",
        json={
            "slurm_job_id": job,
            "username": "u",
            "lead_host": "h",
            "bookings": [{"product_feature": name, "quantity": quantity}],
        },
        headers=auth_headers(*AGENT, client_id=cluster),
    )


def granted_until_refused(client, auth_headers, names: dict[str, str]) -> int:
    """Each cluster in turn books 1 license of its own name for the pool; the total granted."""
    granted = 0
    for number in range(40):
        cluster = list(names)[number % len(names)]
        answer = post_job(client, auth_headers, cluster, names[cluster], 1, str(number))
        assert answer.status_code in (201, 409), answer.json
        granted += answer.status_code == 201
    return granted


def test_products_differing_in_case_are_one_pool(client, admin, auth_headers):
    configure(client, admin, "cluster-a", "abaqus", "cae")
    # cluster-b's admin tries to name the product in capitals: the catalogue refuses.
    clash = client.post("/lm/products", json={"name": "ABAQUS"}, headers=admin)
    assert clash.status_code == 409
    assert "'abaqus'" in clash.json["message"]
    configure(client, admin, "cluster-b", "ABAQUS", "CAE")
    agent_report(client, auth_headers, "cluster-a", "abaqus", "cae", total=10, used=0)
    agent_report(client, auth_headers, "cluster-b", "ABAQUS", "CAE", total=10, used=0)

    names = {"cluster-a": "abaqus.cae", "cluster-b": "ABAQUS.CAE"}
    assert granted_until_refused(client, auth_headers, names) == 10


def test_a_cluster_reporting_an_inflated_total_cannot_push_the_pool_past_the_server(
    client, admin, auth_headers
):
    feature_a = configure(client, admin, "cluster-a", "abaqus", "cae")
    feature_b = configure(client, admin, "cluster-b", "abaqus", "cae")
    agent_report(client, auth_headers, "cluster-a", "abaqus", "cae", total=10, used=0)
    shown = agent_report(client, auth_headers, "cluster-b", "abaqus", "cae", total=1000, used=0)
    # Its own figures are what it reported; the pool's are the server's.
    assert (shown["total"], shown["pool"]["total"], shown["available"]) == (1000, 10, 10)

    names = {"cluster-b": "abaqus.cae", "cluster-a": "abaqus.cae"}
    assert granted_until_refused(client, auth_headers, names) == 10
    for feature in (feature_a, feature_b):
        assert client.get(f"/lm/features/{feature}", headers=admin).json["available"] == 0


def test_a_cluster_reporting_less_usage_cannot_free_tokens(client, admin, auth_headers):
    configure(client, admin, "cluster-a", "abaqus", "cae")
    feature_b = configure(client, admin, "cluster-b", "abaqus", "cae")
    agent_report(client, auth_headers, "cluster-a", "abaqus", "cae", total=10, used=8)
    agent_report(client, auth_headers, "cluster-b", "abaqus", "cae", total=10, used=0)
    client.put(f"/lm/features/{feature_b}", json={"reserved": 1}, headers=admin)

    # 10 - 8 (the highest used) - 1 (the highest reserved) = 1, for both clusters.
    shown = client.get(f"/lm/features/{feature_b}", headers=admin).json
    assert (shown["pool"], shown["available"]) == ({"total": 10, "used": 8, "reserved": 1}, 1)
    assert post_job(client, auth_headers, "cluster-b", "abaqus.cae", 2, "1").status_code == 409
    assert post_job(client, auth_headers, "cluster-a", "abaqus.cae", 1, "2").status_code == 201
    assert post_job(client, auth_headers, "cluster-b", "abaqus.cae", 1, "3").status_code == 409


def test_a_stale_members_figures_no_longer_count(app, client, admin, auth_headers):
    """Only fresh reports make the figures: a member that stopped reporting keeps neither a low
    total nor a high usage in the pool for ever."""
    feature_a = configure(client, admin, "cluster-a", "abaqus", "cae")
    feature_b = configure(client, admin, "cluster-b", "abaqus", "cae")
    agent_report(client, auth_headers, "cluster-a", "abaqus", "cae", total=10, used=2)
    agent_report(client, auth_headers, "cluster-b", "abaqus", "cae", total=5, used=5)
    report(app, feature_b, total=5, used=5, age=timedelta(seconds=601))

    shown = client.get(f"/lm/features/{feature_a}", headers=admin).json
    assert (shown["pool"]["total"], shown["pool"]["used"], shown["available"]) == (10, 2, 8)
    assert post_job(client, auth_headers, "cluster-a", "abaqus.cae", 8, "1").status_code == 201
    # cluster-b's own report is stale: it cannot book at all.
    refused = post_job(client, auth_headers, "cluster-b", "abaqus.cae", 1, "2")
    assert refused.status_code == 409
    assert client.get(f"/lm/features/{feature_b}", headers=admin).json["available"] == 0


def test_available_shown_is_what_the_rule_grants(client, admin, auth_headers):
    feature_a = configure(client, admin, "cluster-a", "abaqus", "cae")
    configure(client, admin, "cluster-b", "abaqus", "cae")
    agent_report(client, auth_headers, "cluster-a", "abaqus", "cae", total=12, used=3)
    agent_report(client, auth_headers, "cluster-b", "abaqus", "cae", total=11, used=4)
    assert post_job(client, auth_headers, "cluster-b", "abaqus.cae", 2, "1").status_code == 201

    available = client.get(f"/lm/features/{feature_a}", headers=admin).json["available"]
    assert available == 11 - 4 - 2
    too_many = post_job(client, auth_headers, "cluster-a", "abaqus.cae", available + 1, "2")
    assert too_many.json["errors"]["abaqus.cae"]["available"] == available
    assert (
        post_job(client, auth_headers, "cluster-a", "abaqus.cae", available, "3").status_code == 201
    )
