"""POST, GET /lm/products; GET, PUT, DELETE /lm/products/{id}."""

import pytest


def test_create_trims_the_name_and_shows_the_product(client, auth_headers):
    headers = auth_headers("license-manager:product:create", "license-manager:product:read")
    created = client.post("/lm/products", json={"name": "  abaqus "}, headers=headers)
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "name": "abaqus"}
    shown = client.get(f"/lm/products/{created.json['id']}", headers=headers)
    assert shown.json == created.json


def test_duplicate_name_is_a_conflict_naming_it(client, auth_headers, catalog):
    catalog.product("abaqus")
    response = client.post("/lm/products", json={"name": "abaqus"}, headers=auth_headers())
    assert response.status_code == 409
    assert "'abaqus' already exists" in response.json["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 12}, "name"),
        ({"name": "ansys", "vendor": "x"}, "vendor"),
    ],
)
def test_invalid_bodies_are_refused_by_field(client, auth_headers, body, field):
    response = client.post("/lm/products", json=body, headers=auth_headers())
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_rename_and_rename_onto_another_product(client, auth_headers, catalog):
    abaqus = catalog.product("abaqus")
    catalog.product("ansys")
    url = f"/lm/products/{abaqus['id']}"
    renamed = client.put(url, json={"name": "abaqus-2024"}, headers=auth_headers())
    assert renamed.json == {"id": abaqus["id"], "name": "abaqus-2024"}
    clash = client.put(url, json={"name": "ansys"}, headers=auth_headers())
    assert clash.status_code == 409
    assert client.get(url, headers=auth_headers()).json["name"] == "abaqus-2024"


def test_delete_unused_product(client, auth_headers, catalog):
    product = catalog.product()
    url = f"/lm/products/{product['id']}"
    assert client.delete(url, headers=auth_headers()).status_code == 204
    assert client.get(url, headers=auth_headers()).status_code == 404


def test_delete_product_with_features_is_refused_naming_them(client, auth_headers, catalog):
    configuration = catalog.configuration("site-flexlm")
    product = catalog.product("abaqus")
    catalog.feature(configuration["id"], product["id"], "cae")
    response = client.delete(f"/lm/products/{product['id']}", headers=auth_headers())
    assert response.status_code == 409
    assert "cae (configuration 'site-flexlm')" in response.json["message"]
    assert client.get(f"/lm/products/{product['id']}", headers=auth_headers()).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_product_is_404(client, auth_headers, method):
    response = getattr(client, method)("/lm/products/42", json={}, headers=auth_headers())
    assert response.status_code == 404
    assert response.json["message"] == "No product with id 42."
