"""HTTP to the License Manager API: tokens, requests, and errors turned into one readable line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from lm_common import api
from lm_common.api import (
    ApiResponse,
    ApiUnreachable,
    ClientCredentials,
    DiscoveryError,
    StaticToken,
    TokenError,
    TokenSource,
    pagination,
)

API_PREFIX = "/lm"
CREDENTIALS_HINT = (
    "run lm-cli login, or give --token, or --client-id and --client-secret "
    "(or LM_TOKEN, LM_CLIENT_ID...)"
)
# The API nests field errors under the request part that was wrong; the part adds nothing.
REQUEST_LOCATIONS = ("json", "query", "path", "form", "headers")


class CliError(Exception):
    """A failure lm-cli reports as one line on stderr, exiting with status 1."""


def status_phrase(response: ApiResponse) -> str:
    """`Not Found` rather than the server's spelling (werkzeug says `NOT FOUND`)."""
    try:
        return HTTPStatus(response.status).phrase
    except ValueError:
        return response.reason or ""


def describe_error_response(response: ApiResponse) -> str:
    """`409 Conflict: message (field: reason; ...)` from the API's (or an OAuth) JSON error body.

    Field errors the message already tells (by field name or by reason) are not repeated.
    """
    heading = f"{response.status} {status_phrase(response)}".rstrip()
    body = response.body
    if not response.is_json:
        return f"{heading} from {response.url}"
    if not isinstance(body, Mapping):
        return f"{heading}: {json.dumps(body)}"
    if not body:
        return heading
    message = body.get("message")
    if message is None and "error" in body:  # OAuth 2 token endpoint (RFC 6749 section 5.2)
        message = ": ".join(str(body[key]) for key in ("error", "error_description") if key in body)
    if message is None:  # not an error document, e.g. the health endpoint's own answer
        return f"{heading}: {'; '.join(map(str, flatten_errors(body)))}"
    details = [
        detail
        for detail in flatten_errors(body.get("errors") or {})
        if not detail.named_in(message)
    ]
    return f"{heading}: {message}" + (f" ({'; '.join(map(str, details))})" if details else "")


@dataclass(frozen=True)
class FieldError:
    """One field's complaint, e.g. `grace_time: Must be greater than or equal to 0.`"""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason

    def named_in(self, message: str) -> bool:
        """True when the API's message already says it (names the field or gives the reason)."""
        names_field = bool(self.field) and re.search(rf"\b{re.escape(self.field)}\b", message)
        return bool(names_field) or self.reason in message


def holds_only_values(container: Mapping[str, Any] | list[Any]) -> bool:
    values = container.values() if isinstance(container, Mapping) else container
    return bool(container) and not any(isinstance(value, Mapping | list) for value in values)


def child_field(prefix: str, key: str) -> str:
    """`bookings.0.quantity`, without the request part (`json`, `query`) the API nests under."""
    if not prefix:
        return "" if key in REQUEST_LOCATIONS else key
    return f"{prefix}.{key}"


def flatten_errors(errors: Any, prefix: str = "") -> list[FieldError]:
    """Field-level errors, however deeply marshmallow (or the booking refusal) nests them."""
    if isinstance(errors, Mapping):
        if holds_only_values(errors):
            pairs = ", ".join(f"{key}={value}" for key, value in errors.items())
            return [FieldError(prefix, pairs)]
        return [
            error
            for key, value in errors.items()
            for error in flatten_errors(value, child_field(prefix, str(key)))
        ]
    if isinstance(errors, list):
        if holds_only_values(errors):
            return [FieldError(prefix, " ".join(map(str, errors)))]
        return [error for item in errors for error in flatten_errors(item, prefix)]
    return [FieldError(prefix, str(errors))]


def token_failure(error: TokenError) -> CliError:
    """The issuer's refusal as one line; discovery problems as the shared client words them."""
    response = error.response
    if isinstance(error, DiscoveryError) or response is None or response.ok:
        return CliError(str(error))
    return CliError(f"token request refused: {describe_error_response(response)}")


def json_body(response: ApiResponse, expected: type) -> Any:
    """The answer's JSON, if it is the kind the endpoint returns; else --url is likely wrong."""
    if not response.is_json or not isinstance(response.body, expected):
        raise CliError(
            f"{response.url} answered {response.status} without the expected JSON: "
            "is --url the License Manager API?"
        )
    return response.body


@dataclass(frozen=True)
class Page:
    """One answer of a list endpoint and its pagination metadata (the X-Pagination header)."""

    items: list[dict[str, Any]]
    pagination: dict[str, Any] | None


def token_source(
    token: str | None,
    issuer_url: str,
    client_id: str | None,
    client_secret: str | None,
    timeout: float,
) -> TokenSource | None:
    """Where lm-cli's bearer tokens come from: --token, else client credentials, else none."""
    if token:
        return StaticToken(token)
    if client_id and client_secret:
        return ClientCredentials(issuer_url, client_id, client_secret, timeout=timeout)
    return None


class ApiClient:
    """Calls /lm endpoints of one API with tokens from `tokens` (None: none, so the API says 401).

    Every failure becomes a CliError of one line.
    """

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource | None,
        timeout: float,
        *,
        unauthorized_hint: str | None = None,
    ) -> None:
        self.http = api.ApiClient(base_url, tokens, timeout=timeout)
        self.base_url = self.http.base_url
        # What a 401 adds: how to give credentials, or (a stored login) that the session ended.
        self.unauthorized_hint = unauthorized_hint or (None if tokens else CREDENTIALS_HINT)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
    ) -> ApiResponse:
        try:
            response = self.http.request(method, API_PREFIX + path, params=params, json=payload)
        except ApiUnreachable as error:
            raise CliError(f"cannot reach the API at {self.base_url}: {error.reason}") from None
        except TokenError as error:
            raise token_failure(error) from None
        if response.status == 401 and self.unauthorized_hint:
            raise CliError(f"{describe_error_response(response)}; {self.unauthorized_hint}")
        if response.status >= 400:
            raise CliError(describe_error_response(response))
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return json_body(self.request("GET", path, params=params), Mapping)

    def list_page(self, path: str, params: Mapping[str, Any]) -> Page:
        response = self.request("GET", path, params=params)
        # Only the footer needs the pagination metadata.
        return Page(json_body(response, list), pagination(response) or None)

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        return json_body(self.request("POST", path, payload=payload), Mapping)

    def put(self, path: str, payload: Mapping[str, Any]) -> Any:
        return json_body(self.request("PUT", path, payload=payload), Mapping)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)
