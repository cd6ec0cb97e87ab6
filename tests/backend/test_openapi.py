"""The OpenAPI document lists every endpoint; Swagger UI is served from local files."""

import re

import pytest

# Every path and method the API offers (docs/architecture.md, "API"); none may go missing.
ENDPOINTS = {
    "/lm/configurations": {"post", "get"},
    "/lm/configurations/by_client_id": {"get"},
    "/lm/configurations/{config_id}": {"get", "put", "delete"},
    "/lm/license_servers": {"post", "get"},
    "/lm/license_servers/{server_id}": {"get", "put", "delete"},
    "/lm/products": {"post", "get"},
    "/lm/products/{product_id}": {"get", "put", "delete"},
    "/lm/features": {"post", "get"},
    "/lm/features/by_client_id": {"put"},
    "/lm/features/{feature_id}": {"get", "put", "delete"},
    "/lm/jobs": {"post", "get"},
    "/lm/jobs/by_client_id": {"get"},
    "/lm/jobs/{job_id}": {"get", "delete"},
    "/lm/jobs/slurm_job_id/{slurm_job_id}": {"get", "delete"},
    "/lm/bookings": {"post", "get"},
    "/lm/bookings/{booking_id}": {"get", "delete"},
    "/lm/license_failures": {"post", "get"},
    "/lm/license_failures/{failure_id}": {"get"},
    "/lm/health": {"get"},
}
GUARDED = [
    (path, method)
    for path, methods in ENDPOINTS.items()
    if path != "/lm/health"
    for method in methods
]


@pytest.fixture(scope="module")
def spec(app):
    response = app.test_client().get("/lm/openapi.json")
    assert response.status_code == 200
    return response.json


def test_every_endpoint_is_documented(spec):
    documented = {
        path: {method for method in operations if method != "parameters"}
        for path, operations in spec["paths"].items()
        if path in ENDPOINTS
    }
    assert documented == ENDPOINTS


@pytest.mark.parametrize(("path", "method"), GUARDED)
def test_guarded_endpoints_document_token_permission_and_errors(spec, path, method):
    operation = spec["paths"][path][method]
    assert operation["security"] == [{"bearerAuth": []}]
    assert re.search(
        r"Requires permission `license-manager:[a-z-]+:[a-z]+`", operation["description"]
    )
    assert {"401", "403"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("path", "method", "body", "answer"),
    [
        ("/lm/configurations", "post", "Configuration", "Configuration"),
        ("/lm/configurations/{config_id}", "put", "ConfigurationUpdate", "Configuration"),
        ("/lm/license_servers", "post", "LicenseServer", "LicenseServer"),
        ("/lm/products/{product_id}", "put", "ProductUpdate", "Product"),
        ("/lm/features", "post", "Feature", "Feature"),
    ],
)
def test_bodies_and_answers_have_schemas(spec, path, method, body, answer):
    operation = spec["paths"][path][method]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": f"#/components/schemas/{body}"}
    success = next(code for code in operation["responses"] if code.startswith("2"))
    answer_schema = operation["responses"][success]["content"]["application/json"]["schema"]
    assert answer_schema == {"$ref": f"#/components/schemas/{answer}"}
    assert "422" in operation["responses"]


def test_conflicts_and_not_found_are_documented_with_the_error_shape(spec):
    operation = spec["paths"]["/lm/products/{product_id}"]["delete"]
    for code in ("404", "409"):
        schema = operation["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}


def test_lists_document_search_sort_and_pagination(spec):
    operation = spec["paths"]["/lm/features"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert {"search", "sort_field", "sort_order", "page", "page_size"} <= set(parameters)
    assert parameters["sort_order"]["schema"]["enum"] == ["ascending", "descending"]
    assert "X-Pagination" in operation["responses"]["200"]["headers"]


def test_search_descriptions_name_each_searched_field_once(spec):
    searched = {
        path: parameter["description"].removeprefix("Case-insensitive text matched against ")
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "search"
    }
    assert searched["/lm/features"] == "name, products.name"
    assert searched["/lm/bookings"] == "products.name, features.name, jobs.slurm_job_id"
    for path, fields in searched.items():
        names = fields.split(", ")
        assert len(names) == len(set(names)), path


def test_feature_answer_shows_pool_bookings_and_availability(spec):
    properties = spec["components"]["schemas"]["Feature"]["properties"]
    assert {"booked", "available", "product", "reported_at", "report_status"} <= set(properties)
    assert properties["available"]["readOnly"] is True


def test_swagger_ui_loads_its_assets_from_this_server(client):
    page = client.get("/lm/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/lm/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, "the page should reference the Swagger UI script and stylesheet"
    for asset in assets:
        assert asset.startswith("/lm/docs/static/"), f"{asset} is not served locally"
        response = client.get(asset)
        assert response.status_code == 200
        assert len(response.data) > 1000
    assert not re.search(r"https?://", html)
