"""No malformed input makes the API answer a 500, and every answer matches the OpenAPI document.

The first test lets schemathesis generate requests from /lm/openapi.json for every operation
(valid ones, boundary values and schema-violating ones) through the real WSGI app and database.
The tests after it pin each bug class the fuzzing found, plus the hostile inputs an API on a
cluster's network sees (bad JSON, odd encodings, huge numbers, broken tokens).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient

# Small, fixed and derandomized: the same cases on every run, well under a minute in CI.
FUZZ_CONFIG = {
    "seed": 20240601,
    "generation": {
        "max-examples": 5,
        "deterministic": True,
        "database": "none",
    },
    "checks": {
        # flask-smorest documents the JSON X-Pagination header with a plain `schema`, which
        # OpenAPI reads as `k,v,k,v`; its JSON content is tested in test_listing.py.
        "response_headers_conformance": {"enabled": False},
        # A schema-valid body may still name a configuration, job or feature that does not exist
        # or break a rule JSON Schema cannot express (product.feature): a field-level 422.
        # The device login endpoint is rate limited per address: 429 (documented) once it is hit.
        "positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 422, 429]},
    },
}


@pytest.fixture
def api_schema(app: Flask, auth_headers: Callable[..., dict[str, str]]) -> schemathesis.BaseSchema:
    """The app's own document, fuzzed as an admin (schemathesis also tries it without the token)."""
    token = auth_headers()["Authorization"].removeprefix("Bearer ")
    config = schemathesis.Config.from_dict(
        {**FUZZ_CONFIG, "auth": {"openapi": {"bearerAuth": {"bearer": token}}}}
    )
    return schemathesis.openapi.from_wsgi("/lm/openapi.json", app, config=config)


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
def test_generated_requests_get_documented_answers(
    case: schemathesis.Case, client: FlaskClient
) -> None:
    """`client` empties the tables after each operation, so fuzzed rows never reach other tests."""
    case.call_and_validate()


def assert_json_error(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.get_data()[:300]
    assert response.is_json
    assert response.json["code"] == code
    assert response.json["status"]
    assert response.json["message"]
    return response.json


def post_raw(client: FlaskClient, path: str, body: str | bytes, headers: dict[str, str]) -> Any:
    return client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})


JOB = {"slurm_job_id": "123", "username": "user123", "lead_host": "host1"}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/lm/products", {"name": "aba\x00qus"}, "name"),
        ("/lm/products", {"name": "aba\ud800qus"}, "name"),
        ("/lm/jobs", {**JOB, "username": "user\udfff"}, "username"),
        (
            "/lm/jobs",
            {**JOB, "bookings": [{"product_feature": "abaqus.aba\x00qus", "quantity": 1}]},
            "bookings",
        ),
        (
            "/lm/jobs",
            {**JOB, "bookings": [{"product_feature": "abaqus.\ud800", "quantity": 1}]},
            "bookings",
        ),
    ],
    ids=["nul", "surrogate", "surrogate-in-job", "nul-in-booking", "surrogate-in-booking"],
)
def test_text_postgresql_cannot_store_is_a_field_error(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], path, payload, field
) -> None:
    # json.dumps escapes the lone surrogate as \ud800, exactly as a hostile client would send it.
    response = post_raw(client, path, json.dumps(payload), auth_headers())
    assert field in assert_json_error(response, 422)["errors"]["json"]


@pytest.mark.parametrize("path", ["/lm/products", "/lm/jobs", "/lm/features/by_client_id"])
def test_json_nested_beyond_the_decoder_is_a_bad_json_400(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], path: str
) -> None:
    method = client.put if path.endswith("by_client_id") else client.post
    body = "[" * 100_000 + "]" * 100_000
    headers = {**auth_headers(), "Content-Type": "application/json"}
    response = method(path, data=body, headers=headers)
    assert assert_json_error(response, 400)["errors"] == {"json": ["Invalid JSON body."]}


@pytest.mark.parametrize("slurm_job_id", ["%00", "123%00", "a%20b", "x" * 65])
def test_a_slurm_job_id_no_job_can_have_is_not_found(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], slurm_job_id: str
) -> None:
    for method in (client.get, client.delete):
        response = method(f"/lm/jobs/slurm_job_id/{slurm_job_id}", headers=auth_headers())
        assert_json_error(response, 404)


def test_a_wrong_method_answer_names_the_allowed_ones(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.patch("/lm/products/1", headers=auth_headers())
    assert_json_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}


@pytest.mark.parametrize(
    "grace_time",
    ["1e400", str(10**30), "60.0", "NaN", "true", '"60"'],
    ids=["infinity", "10**30", "float", "nan", "boolean", "string"],
)
def test_a_count_that_is_not_a_bounded_json_integer_is_a_field_error(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], grace_time: str
) -> None:
    body = (
        f'{{"name": "c", "cluster_client_id": "a", "grace_time": {grace_time}, "type": "flexlm"}}'
    )
    response = post_raw(client, "/lm/configurations", body, auth_headers())
    assert "grace_time" in assert_json_error(response, 422)["errors"]["json"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/lm/products", "[1, 2]"),
        ("/lm/products", '"abaqus"'),
        ("/lm/products", "null"),
        ("/lm/products", '{"name": {"nested": 1}}'),
        ("/lm/products", '{"name": "abaqus", "id": 7, "unknown": 1}'),
        ("/lm/jobs", '{"slurm_job_id": "1", "username": "u", "lead_host": "h", "bookings": {}}'),
        ("/lm/jobs", '{"slurm_job_id": "1", "username": "u", "lead_host": "h", "bookings": [7]}'),
    ],
    ids=[
        "array",
        "string",
        "null",
        "object-for-string",
        "unknown-fields",
        "object-for-list",
        "int",
    ],
)
def test_a_body_of_the_wrong_shape_is_a_422(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], path: str, body: str
) -> None:
    assert assert_json_error(post_raw(client, path, body, auth_headers()), 422)["errors"]["json"]


def test_a_feature_report_that_is_not_a_list_is_a_422(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    response = client.put(
        "/lm/features/by_client_id", json={"product_name": "abaqus"}, headers=auth_headers()
    )
    assert_json_error(response, 422)


@pytest.mark.parametrize(
    "body", [b"\xff\xfe{\x00", '{"name": "abaqus"}'.encode("utf-16"), b'{"name": "\xe9"}']
)
def test_a_body_that_is_not_utf8_is_a_bad_json_400(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], body: bytes
) -> None:
    assert_json_error(post_raw(client, "/lm/products", body, auth_headers()), 400)


def test_a_ten_megabyte_body_is_refused_before_parsing(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    body = json.dumps({"name": "a" * 10_000_000})
    response = post_raw(client, "/lm/products", body, auth_headers())
    assert "LM_MAX_BODY_BYTES" in assert_json_error(response, 413)["message"]


def test_a_long_field_within_the_body_limit_is_a_field_error(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    body = json.dumps({"name": "a" * 100_000})
    response = post_raw(client, "/lm/products", body, auth_headers())
    assert assert_json_error(response, 422)["errors"] == {
        "json": {"name": ["Length must be between 1 and 255."]}
    }


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("page=-1", "page"),
        ("page=0", "page"),
        ("page=1.5", "page"),
        ("page=%00", "page"),
        ("page_size=0", "page_size"),
        (f"page_size={10**9}", "page_size"),
        ("sort_order=sideways", "sort_order"),
        ("sort_field=password", "sort_field"),
        ("search=%00", "search"),
        ("search=" + "a" * 256, "search"),
    ],
)
def test_a_bad_list_parameter_is_a_field_error(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], query: str, parameter: str
) -> None:
    for path in ("/lm/products", "/lm/jobs/by_client_id"):
        response = client.get(f"{path}?{query}", headers=auth_headers())
        assert parameter in assert_json_error(response, 422)["errors"]["query"]


@pytest.mark.parametrize(
    "query", [f"page={10**30}", "page=1&page=2", "sort_field=id&sort_field=name", "unknown=1"]
)
def test_odd_but_readable_list_parameters_answer_a_page(
    client: FlaskClient, auth_headers: Callable[..., dict[str, str]], query: str
) -> None:
    """A page past the end is empty; a repeated parameter counts once; unknown ones are ignored."""
    response = client.get(f"/lm/products?{query}", headers=auth_headers())
    assert response.status_code == 200
    assert response.json == []


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ADMIN_CLAIMS = {
    "iss": "http://lm.test",
    "client_id": "cluster-a",
    "exp": 4102444800,
    "permissions": ["license-manager:admin"],
}


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer a.b.c.d.e",
        "Bearer !!!.???.***",
        "Bearer é.é.é",
        f"Bearer {_segment({'alg': 'none'})}.{_segment(ADMIN_CLAIMS)}.",
        f"Bearer {_segment({'alg': 'HS256'})}.{_segment(ADMIN_CLAIMS)}.c2ln",
        f"Bearer {_segment({'alg': 'RS256', 'kid': 'k' * 100_000})}.{_segment(ADMIN_CLAIMS)}.c2ln",
        f"Bearer {_segment({'alg': None, 'kid': 7})}.{_segment(ADMIN_CLAIMS)}.c2ln",
        f"Bearer {_segment([1, 2])}.{_segment(ADMIN_CLAIMS)}.c2ln",
        f"Bearer {_segment(b'{')}.{_segment(b'x')}.c2ln",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
    ],
    ids=[
        "not-a-jwt",
        "five-parts",
        "not-base64",
        "non-ascii",
        "alg-none",
        "hmac",
        "huge-header",
        "null-alg",
        "header-list",
        "header-not-json",
        "basic",
        "no-token",
    ],
)
def test_an_untrustworthy_token_is_a_401(client: FlaskClient, authorization: str) -> None:
    response = client.get("/lm/products", headers={"Authorization": authorization})
    assert_json_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
