"""POST, GET /lm/configurations; GET /lm/configurations/by_client_id; GET, PUT, DELETE by id."""

import pytest
from sqlalchemy import event, text

from backend.extensions import db
from tests.backend.catalog import add_booking

CONFIGURATION = {
    "name": "configuration-name",
    "cluster_client_id": "cluster-client-id",
    "grace_time": 60,
    "type": "flexlm",
}


def count_rows(app, table: str) -> int:
    with app.app_context():
        return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


def test_create_then_show_with_servers_and_features(client, auth_headers, catalog):
    headers = auth_headers("license-manager:configuration:create", client_id="cluster-client-id")
    created = client.post("/lm/configurations", json=CONFIGURATION, headers=headers)
    assert created.status_code == 201
    config_id = created.json["id"]
    assert created.json == {
        "id": config_id,
        **CONFIGURATION,
        "booking_max_age": 1800,
        "license_servers": [],
        "features": [],
    }
    server = catalog.license_server(config_id, "licserv0001", 1234)
    product = catalog.product("abaqus")
    feature = catalog.feature(config_id, product["id"], "abaqus", reserved=50)

    shown = client.get(
        f"/lm/configurations/{config_id}",
        headers=auth_headers("license-manager:configuration:read", client_id="cluster-client-id"),
    ).json
    assert shown["license_servers"] == [server]
    assert shown["features"] == [feature]
    assert shown["features"][0]["product"] == {"id": product["id"], "name": "abaqus"}


def test_name_is_unique_within_a_cluster_only(client, auth_headers, catalog):
    catalog.configuration("flexlm-site", cluster_client_id="cluster-a")
    catalog.configuration("flexlm-site", cluster_client_id="cluster-b")
    body = {**CONFIGURATION, "name": "flexlm-site", "cluster_client_id": "cluster-a"}
    response = client.post("/lm/configurations", json=body, headers=auth_headers())
    assert response.status_code == 409
    assert response.json["message"] == (
        "Cluster 'cluster-a' already has a configuration named 'flexlm-site'."
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grace_time": -1}, "grace_time"),
        ({"grace_time": 2**64}, "grace_time"),
        ({"grace_time": 1.5}, "grace_time"),
        ({"booking_max_age": -1}, "booking_max_age"),
        ({"booking_max_age": "1800"}, "booking_max_age"),
        ({"type": "sentinel"}, "type"),
        ({"name": ""}, "name"),
        ({"cluster_client_id": None}, "cluster_client_id"),
        ({"features": []}, "features"),
    ],
)
def test_invalid_configurations_are_refused(client, auth_headers, change, field):
    response = client.post(
        "/lm/configurations", json={**CONFIGURATION, **change}, headers=auth_headers()
    )
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_unknown_type_lists_the_valid_ones(client, auth_headers):
    body = {**CONFIGURATION, "type": "sentinel"}
    response = client.post("/lm/configurations", json=body, headers=auth_headers())
    assert "flexlm, rlm, lsdyna, lmx, olicense, dsls" in response.json["errors"]["json"]["type"][0]


def test_by_client_id_lists_the_token_clusters_configurations(client, auth_headers, catalog):
    mine = [catalog.configuration(f"mine-{n}", cluster_client_id="cluster-a") for n in range(12)]
    catalog.configuration("theirs", cluster_client_id="cluster-b")
    response = client.get(
        "/lm/configurations/by_client_id",
        headers=auth_headers("license-manager:configuration:read", client_id="cluster-a"),
    )
    assert response.status_code == 200
    # Not paged: the agent needs every configuration of its cluster in one answer.
    assert [configuration["name"] for configuration in response.json] == [
        configuration["name"] for configuration in mine
    ]


def test_update_changes_only_the_fields_sent(client, auth_headers, catalog):
    configuration = catalog.configuration()
    url = f"/lm/configurations/{configuration['id']}"
    updated = client.put(url, json={"grace_time": 300, "type": "rlm"}, headers=auth_headers())
    assert updated.status_code == 200
    assert updated.json == {**configuration, "grace_time": 300, "type": "rlm"}


def test_rename_onto_a_sibling_is_a_conflict(client, auth_headers, catalog):
    catalog.configuration("first")
    second = catalog.configuration("second")
    url = f"/lm/configurations/{second['id']}"
    response = client.put(url, json={"name": "first"}, headers=auth_headers())
    assert response.status_code == 409
    assert client.get(url, headers=auth_headers()).json["name"] == "second"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_configuration_is_404(client, auth_headers, method):
    response = getattr(client, method)("/lm/configurations/7", json={}, headers=auth_headers())
    assert response.status_code == 404
    assert response.json["message"] == "No configuration with id 7."


def populated_configuration(app, catalog, cluster: str = "cluster-a") -> int:
    """A configuration with a server and a feature that a job has booked; its id."""
    configuration = catalog.configuration(f"{cluster}-site", cluster_client_id=cluster)
    catalog.license_server(configuration["id"], f"{cluster}-licserv", 27000)
    product = catalog.product(f"{cluster}-product")
    feature = catalog.feature(configuration["id"], product["id"])
    add_booking(app, feature["id"], 3, cluster=cluster)
    return configuration["id"]


def test_delete_removes_servers_features_and_their_bookings(app, client, auth_headers, catalog):
    doomed = populated_configuration(app, catalog, "cluster-a")
    populated_configuration(app, catalog, "cluster-b")

    assert client.delete(f"/lm/configurations/{doomed}", headers=auth_headers()).status_code == 204

    assert count_rows(app, "license_servers") == 1
    assert count_rows(app, "features") == 1
    assert count_rows(app, "bookings") == 1
    # The jobs stay (their epilog deletes them); the products are shared and stay too.
    assert count_rows(app, "jobs") == 2
    assert count_rows(app, "products") == 2


def test_the_database_itself_cascades_a_configuration_delete(app, catalog):
    """Not only the ORM: a plain SQL delete (e.g. by an admin in psql) leaves no orphans."""
    config_id = populated_configuration(app, catalog)
    with app.app_context():
        db.session.execute(text("DELETE FROM configurations WHERE id = :id"), {"id": config_id})
        db.session.commit()
    for table in ("license_servers", "features", "bookings"):
        assert count_rows(app, table) == 0


def count_statements(app, client, url, headers) -> int:
    statements = []

    def record(*args):
        statements.append(args)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_list_queries_do_not_grow_with_rows(app, client, auth_headers, catalog):
    headers = auth_headers()
    populated_configuration(app, catalog, "cluster-a")
    one = count_statements(app, client, "/lm/configurations", headers)
    for cluster in ("cluster-b", "cluster-c", "cluster-d"):
        populated_configuration(app, catalog, cluster)
    assert count_statements(app, client, "/lm/configurations", headers) == one
