"""POST, GET /lm/license_servers; GET, PUT, DELETE /lm/license_servers/{id}."""

import pytest


@pytest.fixture
def config_id(catalog):
    return catalog.configuration()["id"]


def test_create_and_show(client, auth_headers, config_id):
    headers = auth_headers("license-manager:license-server:create")
    body = {"config_id": config_id, "host": "licserv0001", "port": 1234}
    created = client.post("/lm/license_servers", json=body, headers=headers)
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], **body}
    shown = client.get(
        f"/lm/license_servers/{created.json['id']}",
        headers=auth_headers("license-manager:license-server:read"),
    )
    assert shown.json == created.json


def test_same_host_port_twice_in_a_configuration_is_a_conflict(
    client, auth_headers, catalog, config_id
):
    catalog.license_server(config_id, "licserv0001", 1234)
    body = {"config_id": config_id, "host": "licserv0001", "port": 1234}
    response = client.post("/lm/license_servers", json=body, headers=auth_headers())
    assert response.status_code == 409
    assert "licserv0001:1234" in response.json["message"]


def test_another_configuration_may_name_the_same_server(catalog, config_id):
    """Clusters sharing a license server is how pools span clusters."""
    catalog.license_server(config_id, "licserv0001", 1234)
    other = catalog.configuration(cluster_client_id="cluster-b")
    assert catalog.license_server(other["id"], "licserv0001", 1234)["config_id"] == other["id"]


def test_unknown_configuration_is_refused(client, auth_headers):
    body = {"config_id": 99, "host": "licserv0001", "port": 1234}
    response = client.post("/lm/license_servers", json=body, headers=auth_headers())
    assert response.status_code == 422
    assert response.json["errors"]["json"]["config_id"] == ["No configuration with id 99."]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "1234"}, "port"),
        ({"host": "lic serv"}, "host"),
        ({"host": "http://licserv/"}, "host"),
        ({"host": ""}, "host"),
        ({"config_id": 0}, "config_id"),
        ({"config_id": 2**63}, "config_id"),
    ],
)
def test_invalid_servers_are_refused(client, auth_headers, config_id, change, field):
    body = {"config_id": config_id, "host": "licserv0001", "port": 1234, **change}
    response = client.post("/lm/license_servers", json=body, headers=auth_headers())
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_update_changes_only_the_fields_sent(client, auth_headers, catalog, config_id):
    server = catalog.license_server(config_id, "licserv0001", 1234)
    url = f"/lm/license_servers/{server['id']}"
    updated = client.put(url, json={"port": 27000}, headers=auth_headers())
    assert updated.status_code == 200
    assert updated.json == {**server, "port": 27000}


def test_update_onto_a_sibling_is_a_conflict(client, auth_headers, catalog, config_id):
    catalog.license_server(config_id, "licserv0001", 1234)
    mirror = catalog.license_server(config_id, "licserv0002", 1234)
    url = f"/lm/license_servers/{mirror['id']}"
    response = client.put(url, json={"host": "licserv0001"}, headers=auth_headers())
    assert response.status_code == 409
    assert client.get(url, headers=auth_headers()).json["host"] == "licserv0002"


def test_update_to_unknown_configuration_is_refused(client, auth_headers, catalog, config_id):
    server = catalog.license_server(config_id)
    url = f"/lm/license_servers/{server['id']}"
    response = client.put(url, json={"config_id": 1000}, headers=auth_headers())
    assert response.status_code == 422
    assert "config_id" in response.json["errors"]["json"]


def test_delete(client, auth_headers, catalog, config_id):
    server = catalog.license_server(config_id)
    url = f"/lm/license_servers/{server['id']}"
    assert client.delete(url, headers=auth_headers()).status_code == 204
    assert client.get(url, headers=auth_headers()).status_code == 404
    configuration = client.get(f"/lm/configurations/{config_id}", headers=auth_headers()).json
    assert configuration["license_servers"] == []


def test_list_sorted_by_port(client, auth_headers, catalog, config_id):
    for port in (27002, 27000, 27001):
        catalog.license_server(config_id, "licserv0001", port)
    response = client.get(
        "/lm/license_servers?sort_field=port&sort_order=descending", headers=auth_headers()
    )
    assert [server["port"] for server in response.json] == [27002, 27001, 27000]
