"""Every error is JSON {code, status, message[, errors]}; malformed input never yields a 500."""

import pytest

ENDPOINTS = [
    # (method, path, resource, action) of the configuration/server/product/feature endpoints.
    ("post", "/lm/configurations", "configuration", "create"),
    ("get", "/lm/configurations", "configuration", "read"),
    ("get", "/lm/configurations/by_client_id", "configuration", "read"),
    ("get", "/lm/configurations/1", "configuration", "read"),
    ("put", "/lm/configurations/1", "configuration", "update"),
    ("delete", "/lm/configurations/1", "configuration", "delete"),
    ("post", "/lm/license_servers", "license-server", "create"),
    ("get", "/lm/license_servers", "license-server", "read"),
    ("get", "/lm/license_servers/1", "license-server", "read"),
    ("put", "/lm/license_servers/1", "license-server", "update"),
    ("delete", "/lm/license_servers/1", "license-server", "delete"),
    ("post", "/lm/products", "product", "create"),
    ("get", "/lm/products", "product", "read"),
    ("get", "/lm/products/1", "product", "read"),
    ("put", "/lm/products/1", "product", "update"),
    ("delete", "/lm/products/1", "product", "delete"),
    ("post", "/lm/features", "feature", "create"),
    ("get", "/lm/features", "feature", "read"),
    ("get", "/lm/features/1", "feature", "read"),
    ("put", "/lm/features/1", "feature", "update"),
    ("delete", "/lm/features/1", "feature", "delete"),
    ("put", "/lm/features/by_client_id", "feature", "update"),
]


def assert_json_error(response, code: int) -> None:
    assert response.status_code == code
    assert response.is_json
    assert response.json["code"] == code
    assert response.json["status"]
    assert response.json["message"]


@pytest.mark.parametrize(("method", "path", "resource", "action"), ENDPOINTS)
def test_each_endpoint_needs_a_token_and_its_permission(
    client, auth_headers, method, path, resource, action
):
    assert_json_error(getattr(client, method)(path), 401)
    other_action = "read" if action != "read" else "delete"
    wrong = auth_headers(f"license-manager:{resource}:{other_action}")
    assert_json_error(getattr(client, method)(path, headers=wrong), 403)
    right = auth_headers(f"license-manager:{resource}:{action}")
    assert getattr(client, method)(path, json={}, headers=right).status_code not in (401, 403)


def test_unknown_url_is_a_json_404(client):
    assert_json_error(client.get("/lm/licenses"), 404)


def test_wrong_method_is_a_json_405(client, auth_headers):
    assert_json_error(client.patch("/lm/products", headers=auth_headers()), 405)


@pytest.mark.parametrize("path", ["/lm/products/abc", "/lm/products/-1", "/lm/products/1.5"])
def test_non_integer_ids_are_a_json_404(client, auth_headers, path):
    assert_json_error(client.get(path, headers=auth_headers()), 404)


@pytest.mark.parametrize("row_id", [2**31, 2**63, 10**40])
def test_ids_beyond_the_database_range_are_not_found(client, auth_headers, row_id):
    response = client.get(f"/lm/features/{row_id}", headers=auth_headers())
    assert_json_error(response, 404)
    assert response.json["message"] == f"No feature with id {row_id}."


def test_bad_json_body_is_a_json_400(client, auth_headers):
    response = client.post(
        "/lm/products",
        data='{"name": "abaqus"',
        headers={**auth_headers(), "Content-Type": "application/json"},
    )
    assert_json_error(response, 400)
    assert response.json["errors"] == {"json": ["Invalid JSON body."]}


@pytest.mark.parametrize(
    "body",
    [
        [{"name": "abaqus"}],
        "abaqus",
        None,
        {"name": {"nested": "object"}},
        {"name": ["abaqus"]},
    ],
)
def test_bodies_of_the_wrong_shape_are_a_422(client, auth_headers, body):
    response = client.post("/lm/products", json=body, headers=auth_headers())
    assert_json_error(response, 422)


def test_non_json_body_is_a_422_naming_the_missing_fields(client, auth_headers):
    response = client.post("/lm/products", data="name=abaqus", headers=auth_headers())
    assert_json_error(response, 422)
    assert response.json["errors"] == {"json": {"name": ["Missing data for required field."]}}


def test_validation_message_summarises_the_field_errors(client, auth_headers):
    body = {"name": "c", "cluster_client_id": "x", "grace_time": -5, "type": "flexlm", "x": 1}
    response = client.post("/lm/configurations", json=body, headers=auth_headers())
    assert_json_error(response, 422)
    assert "json.grace_time: Must be greater than or equal to 0" in response.json["message"]
    assert "json.x: Unknown field." in response.json["message"]
