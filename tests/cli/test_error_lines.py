"""Error bodies our API does not send today (proxies, other issuers) still read as one line."""

from __future__ import annotations

import json

import pytest

from cli.api import describe_error_response
from lm_common.api import ApiResponse, decode_body


def response(status: int, body: str, content_type: str = "application/json") -> ApiResponse:
    """A response as the API client builds it from the wire."""
    headers = {"content-type": content_type}
    decoded, is_json = decode_body(body.encode(), headers)
    return ApiResponse(status, decoded, headers, "http://api.example/lm/products", "", is_json)


@pytest.mark.parametrize(
    ("status", "body", "line"),
    [
        (
            422,
            {"message": "Invalid input.", "errors": {"json": {"port": ["Not a valid integer."]}}},
            "422 Unprocessable Entity: Invalid input. (port: Not a valid integer.)",
        ),
        (
            422,
            {
                "message": "Invalid job.",
                "errors": {"json": {"bookings": {"0": {"quantity": ["Must be at least 1."]}}}},
            },
            "422 Unprocessable Entity: Invalid job. (bookings.0.quantity: Must be at least 1.)",
        ),
        (
            409,
            {"message": "Refused.", "errors": {"abaqus.abaqus": {"requested": 5, "available": 3}}},
            "409 Conflict: Refused. (abaqus.abaqus: requested=5, available=3)",
        ),
        (
            422,
            {"message": "name: Too long.", "errors": {"json": {"name": ["Too long."]}}},
            "422 Unprocessable Entity: name: Too long.",
        ),
        (
            409,
            {"message": "A product named 'x' exists.", "errors": {"json": {"name": ["Taken."]}}},
            "409 Conflict: A product named 'x' exists. (name: Taken.)",
        ),
        (
            400,
            {"error": "invalid_grant", "error_description": "Grant type not allowed."},
            "400 Bad Request: invalid_grant: Grant type not allowed.",
        ),
        (
            503,
            {"status": "error", "database": "unreachable"},
            "503 Service Unavailable: status=error, database=unreachable",
        ),
        (404, {}, "404 Not Found"),
    ],
)
def test_json_error_bodies(status: int, body: dict, line: str):
    assert describe_error_response(response(status, json.dumps(body))) == line


def test_html_from_a_proxy_names_status_and_address():
    proxy_page = response(502, "<html><body>Bad Gateway</body></html>", "text/html")
    assert describe_error_response(proxy_page) == (
        "502 Bad Gateway from http://api.example/lm/products"
    )
