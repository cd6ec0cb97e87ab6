"""One cluster's token cannot change, or see, another cluster's configurations, license servers,
features, jobs and bookings, whatever permissions it holds short of license-manager:admin.

Every write endpoint is tried with cluster-b's token on cluster-a's rows; the answer is 403, 404
(422 for a body naming another cluster's configuration, as for an unknown one) and every row of
the database is unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from backend.auth.permissions import ADMIN_PERMISSION, ALL_PERMISSIONS
from backend.extensions import db
from lm_common.facts import DEFAULT_CLI_CLIENT_ID

# The strongest token a cluster can hold: every permission but admin.
EVERY_PERMISSION_BUT_ADMIN = tuple(p for p in ALL_PERMISSIONS if p != ADMIN_PERMISSION)
TABLES = ("configurations", "license_servers", "features", "products", "jobs", "bookings")


def snapshot(app) -> dict[str, list[Any]]:
    with app.app_context():
        return {
            table: db.session.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
            for table in TABLES
        }


@pytest.fixture
def site(client, catalog, auth_headers) -> dict[str, int]:
    """Two clusters with a configuration, a server and a feature each; a job with a booking of
    cluster-a."""
    product = catalog.product("abaqus")["id"]
    ids: dict[str, int] = {"product": product}
    for cluster in ("a", "b"):
        config = catalog.configuration(f"site-{cluster}", cluster_client_id=f"cluster-{cluster}")
        ids[f"config_{cluster}"] = config["id"]
        ids[f"server_{cluster}"] = catalog.license_server(config["id"], f"lic-{cluster}")["id"]
        feature = catalog.feature(config["id"], product, "cae", total=10)
        ids[f"feature_{cluster}"] = feature["id"]
    agent_a = auth_headers(*EVERY_PERMISSION_BUT_ADMIN, client_id="cluster-a")
    report = [{"product_name": "abaqus", "feature_name": "cae", "total": 10, "used": 0}]
    assert client.put("/lm/features/by_client_id", json=report, headers=agent_a).status_code == 200
    job = client.post(
        "/lm/jobs",
        json={
            "slurm_job_id": "7",
            "username": "u",
            "lead_host": "h",
            "bookings": [{"product_feature": "abaqus.cae", "quantity": 1}],
        },
        headers=agent_a,
    )
    assert job.status_code == 201, job.json
    ids["job_a"] = job.json["id"]
    ids["booking_a"] = job.json["bookings"][0]["id"]
    return ids


# (method, path, body, expected status) of cluster-b's attempts on cluster-a's rows.
ATTEMPTS = [
    ("put", "/lm/configurations/{config_a}", {"grace_time": 1}, 404),
    ("delete", "/lm/configurations/{config_a}", None, 404),
    ("post", "/lm/configurations", {"name": "x", "cluster_client_id": "cluster-a"}, 403),
    ("put", "/lm/configurations/{config_b}", {"cluster_client_id": "cluster-a"}, 403),
    ("post", "/lm/license_servers", {"config_id": "{config_a}", "host": "h", "port": 1}, 422),
    ("put", "/lm/license_servers/{server_a}", {"port": 1}, 404),
    ("put", "/lm/license_servers/{server_b}", {"config_id": "{config_a}"}, 422),
    ("delete", "/lm/license_servers/{server_a}", None, 404),
    (
        "post",
        "/lm/features",
        {"name": "x", "config_id": "{config_a}", "product_id": "{product}"},
        422,
    ),
    ("put", "/lm/features/{feature_a}", {"total": 0}, 404),
    ("put", "/lm/features/{feature_a}", {"reserved": 10}, 404),
    ("put", "/lm/features/{feature_b}", {"config_id": "{config_a}"}, 422),
    ("delete", "/lm/features/{feature_a}", None, 404),
    ("post", "/lm/products", {"name": "ABAQUS"}, 409),
    ("post", "/lm/jobs", {"slurm_job_id": "7", "cluster_client_id": "cluster-a"}, 403),
    ("delete", "/lm/jobs/{job_a}", None, 403),
    ("delete", "/lm/jobs/slurm_job_id/7", None, 404),
    (
        "post",
        "/lm/bookings",
        {"job_id": "{job_a}", "feature_id": "{feature_a}", "quantity": 1},
        403,
    ),
    ("delete", "/lm/bookings/{booking_a}", None, 403),
]
CONFIGURATION = {"grace_time": 60, "type": "flexlm"}
JOB = {"username": "u", "lead_host": "h"}


def fill(value: Any, ids: dict[str, int]) -> Any:
    """The attempt with the site's ids put in ("{config_a}" -> 3)."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    ATTEMPTS,
    ids=[f"{m} {p} {sorted(b or {})}" for m, p, b, _ in ATTEMPTS],
)
def test_another_clusters_token_changes_nothing(
    app, client, auth_headers, site, method, path, body, status
):
    before = snapshot(app)
    if body is not None and path == "/lm/configurations":
        body = {**CONFIGURATION, **body}
    if body is not None and path == "/lm/jobs":
        body = {**JOB, **body}
    answer = getattr(client, method)(
        path.format(**site),
        json=fill(body, site),
        headers=auth_headers(*EVERY_PERMISSION_BUT_ADMIN, client_id="cluster-b"),
    )
    assert answer.status_code == status, answer.json
    assert answer.json["message"]
    assert snapshot(app) == before


def test_a_usage_report_writes_only_the_callers_cluster(app, client, auth_headers, site):
    """cluster-b reporting a name only cluster-a tracks finds nothing; its own name changes only
    its own feature."""
    headers = auth_headers("license-manager:feature:update", client_id="cluster-b")
    before = snapshot(app)
    unknown = [{"product_name": "abaqus", "feature_name": "other", "total": 0, "used": 0}]
    assert client.put("/lm/features/by_client_id", json=unknown, headers=headers).status_code == 404
    assert snapshot(app) == before

    own = [{"product_name": "abaqus", "feature_name": "cae", "total": 0, "used": 0}]
    assert client.put("/lm/features/by_client_id", json=own, headers=headers).status_code == 200
    admin = auth_headers()
    assert client.get(f"/lm/features/{site['feature_a']}", headers=admin).json["total"] == 10
    assert client.get(f"/lm/features/{site['feature_b']}", headers=admin).json["total"] == 0


def test_a_cluster_reads_only_its_own_rows(client, auth_headers, site):
    headers = auth_headers(*EVERY_PERMISSION_BUT_ADMIN, client_id="cluster-b")
    for path, key in [
        ("/lm/configurations", "config_b"),
        ("/lm/license_servers", "server_b"),
        ("/lm/features", "feature_b"),
    ]:
        listed = client.get(path, headers=headers)
        assert [row["id"] for row in listed.json] == [site[key]], path
        assert listed.headers["X-Pagination"].startswith('{"total": 1')
    for path in [
        "/lm/configurations/{config_a}",
        "/lm/license_servers/{server_a}",
        "/lm/features/{feature_a}",
    ]:
        # Exactly the answer for an id that does not exist.
        hidden = client.get(path.format(**site), headers=headers)
        assert hidden.status_code == 404
        assert hidden.json["message"].startswith("No ")
    # Products are the shared catalogue: every cluster sees them.
    assert [p["name"] for p in client.get("/lm/products", headers=headers).json] == ["abaqus"]


def test_an_admin_sees_and_changes_every_cluster(client, auth_headers, site):
    admin = auth_headers()
    assert len(client.get("/lm/configurations", headers=admin).json) == 2
    moved = client.put(f"/lm/features/{site['feature_b']}", json={"reserved": 3}, headers=admin)
    assert moved.status_code == 200
    given = client.put(
        f"/lm/configurations/{site['config_b']}",
        json={"cluster_client_id": "cluster-c"},
        headers=admin,
    )
    assert given.json["cluster_client_id"] == "cluster-c"


def test_a_cluster_creates_and_changes_its_own_rows(client, auth_headers, site):
    headers = auth_headers(*EVERY_PERMISSION_BUT_ADMIN, client_id="cluster-b")
    created = client.post(
        "/lm/configurations",
        json={"name": "second", "cluster_client_id": "cluster-b", **CONFIGURATION},
        headers=headers,
    )
    assert created.status_code == 201
    moved = client.put(
        f"/lm/features/{site['feature_b']}",
        json={"config_id": created.json["id"], "reserved": 2},
        headers=headers,
    )
    assert moved.status_code == 200
    assert (moved.json["config_id"], moved.json["reserved"]) == (created.json["id"], 2)


def test_a_person_reads_every_cluster_and_changes_nothing_without_admin(
    app, client, auth_headers, site
):
    """People are no cluster: their read permissions show every pool; changes need admin."""
    person = auth_headers(*EVERY_PERMISSION_BUT_ADMIN, client_id=DEFAULT_CLI_CLIENT_ID)
    assert len(client.get("/lm/configurations", headers=person).json) == 2
    assert client.get(f"/lm/features/{site['feature_a']}", headers=person).status_code == 200
    before = snapshot(app)
    changed = client.put(f"/lm/features/{site['feature_a']}", json={"total": 0}, headers=person)
    assert changed.status_code == 403
    assert snapshot(app) == before
