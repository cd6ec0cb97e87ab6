"""POST, GET /lm/products; GET, PUT, DELETE /lm/products/{id}."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backend.extensions import db


def test_create_trims_the_name_and_shows_the_product(client, auth_headers):
    headers = auth_headers("license-manager:product:create", "license-manager:product:read")
    created = client.post("/lm/products", json={"name": "  abaqus "}, headers=headers)
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "name": "abaqus"}
    shown = client.get(f"/lm/products/{created.json['id']}", headers=headers)
    assert shown.json == created.json


@pytest.mark.parametrize("name", ["abaqus", "ABAQUS", "Abaqus", " aBaQuS "])
def test_a_name_differing_only_in_case_is_a_conflict_naming_the_product(
    client, auth_headers, catalog, name
):
    existing = catalog.product("abaqus")
    response = client.post("/lm/products", json={"name": name}, headers=auth_headers())
    assert response.status_code == 409
    assert f"Product 'abaqus' (id {existing['id']}) already exists" in response.json["message"]
    assert response.json["errors"] == {"existing": existing}
    listed = client.get("/lm/products", headers=auth_headers()).json
    assert listed == [existing]


def test_renaming_onto_another_products_name_in_other_case_is_a_conflict(
    client, auth_headers, catalog
):
    catalog.product("abaqus")
    ansys = catalog.product("ansys")
    url = f"/lm/products/{ansys['id']}"
    clash = client.put(url, json={"name": "ABAQUS"}, headers=auth_headers())
    assert clash.status_code == 409
    assert "'abaqus'" in clash.json["message"]
    # Its own name in another case is a rename, not a clash.
    renamed = client.put(url, json={"name": "ANSYS"}, headers=auth_headers())
    assert renamed.json == {"id": ansys["id"], "name": "ANSYS"}


def test_the_database_refuses_a_case_variant_written_past_the_api(app, catalog):
    """The unique index is the authority: two requests racing past the check cannot both win."""
    catalog.product("abaqus")
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(text("INSERT INTO products (name) VALUES ('ABAQUS')"))
        db.session.rollback()


@pytest.mark.parametrize(
    "permissions",
    [
        ("license-manager:product:read", "license-manager:feature:update"),
        ("license-manager:configuration:create", "license-manager:feature:create"),
    ],
)
def test_only_product_permissions_change_the_shared_catalogue(
    client, auth_headers, catalog, permissions
):
    """Products are shared by every cluster: a cluster's agent token cannot change them."""
    product = catalog.product("abaqus")
    headers = auth_headers(*permissions, client_id="cluster-b")
    url = f"/lm/products/{product['id']}"
    assert client.post("/lm/products", json={"name": "x"}, headers=headers).status_code == 403
    assert client.put(url, json={"name": "x"}, headers=headers).status_code == 403
    assert client.delete(url, headers=headers).status_code == 403
    assert client.get("/lm/products", headers=auth_headers()).json == [product]


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
