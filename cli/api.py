"""HTTP to the License Manager API: tokens, requests, and errors turned into one readable line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import requests

API_PREFIX = "/lm"
DISCOVERY_PATH = "/.well-known/openid-configuration"
CREDENTIALS_HINT = "give --token, or --client-id and --client-secret (or LM_TOKEN, LM_CLIENT_ID...)"
# The API nests field errors under the request part that was wrong; the part adds nothing.
REQUEST_LOCATIONS = ("json", "query", "path", "form", "headers")


class CliError(Exception):
    """A failure lm-cli reports as one line on stderr, exiting with status 1."""


def status_phrase(response: requests.Response) -> str:
    """`Not Found` rather than the server's spelling (werkzeug says `NOT FOUND`)."""
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason or ""


def describe_error_response(response: requests.Response) -> str:
    """`409 Conflict: message (field: reason; ...)` from the API's (or an OAuth) JSON error body.

    Field errors the message already tells (by field name or by reason) are not repeated.
    """
    heading = f"{response.status_code} {status_phrase(response)}".rstrip()
    try:
        body = response.json()
    except ValueError:
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


def connection_failure(url: str, error: requests.RequestException) -> CliError:
    """A short reason (`Connection refused`) instead of urllib3's nested exception text."""
    if isinstance(error, requests.Timeout):
        return CliError(f"cannot reach the API at {url}: no answer in time")
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    reason = found.group(1).strip() if found else type(error).__name__
    return CliError(f"cannot reach the API at {url}: {reason}")


def json_body(response: requests.Response, expected: type) -> Any:
    """The answer's JSON, if it is the kind the endpoint returns; else --url is likely wrong."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, expected):
        raise CliError(
            f"{response.url} answered {response.status_code} without the expected JSON: "
            "is --url the License Manager API?"
        )
    return body


@dataclass(frozen=True)
class Page:
    """One answer of a list endpoint and its pagination metadata (the X-Pagination header)."""

    items: list[dict[str, Any]]
    pagination: dict[str, Any] | None


class ApiClient:
    """Calls /lm endpoints of one API with one bearer token (or none, to let the API say 401)."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.has_credentials = bool(token)

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; connection problems become a CliError naming the address."""
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise connection_failure(self.base_url, error) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
    ) -> requests.Response:
        response = self.send(
            method, f"{self.base_url}{API_PREFIX}{path}", params=params, json=payload
        )
        if response.status_code == 401 and not self.has_credentials:
            raise CliError(f"{describe_error_response(response)}; {CREDENTIALS_HINT}")
        if response.status_code >= 400:
            raise CliError(describe_error_response(response))
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return json_body(self.request("GET", path, params=params), Mapping)

    def list_page(self, path: str, params: Mapping[str, Any]) -> Page:
        response = self.request("GET", path, params=params)
        try:
            pagination = json.loads(response.headers.get("X-Pagination") or "null")
        except ValueError:
            pagination = None  # only the footer needs it
        return Page(json_body(response, list), pagination)

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        return json_body(self.request("POST", path, payload=payload), Mapping)

    def put(self, path: str, payload: Mapping[str, Any]) -> Any:
        return json_body(self.request("PUT", path, payload=payload), Mapping)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)


def fetch_token(issuer_url: str, client_id: str, client_secret: str, timeout: float) -> str:
    """Exchange client credentials for a token at the issuer's discovered token endpoint."""
    probe = ApiClient(issuer_url, token=None, timeout=timeout)
    discovery = probe.send("GET", f"{probe.base_url}{DISCOVERY_PATH}")
    if discovery.status_code != 200:
        raise CliError(f"no OpenID discovery document at {issuer_url}: {discovery.status_code}")
    try:
        token_endpoint = discovery.json()["token_endpoint"]
    except (ValueError, KeyError, TypeError):
        raise CliError(f"the discovery document at {issuer_url} names no token_endpoint") from None
    answer = probe.send(
        "POST",
        token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
    )
    if answer.status_code != 200:
        raise CliError(f"token request refused: {describe_error_response(answer)}")
    try:
        return answer.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        raise CliError(f"the token endpoint {token_endpoint} answered no access_token") from None
