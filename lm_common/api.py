"""The one HTTP client of the License Manager API, for the agent, lm-cli and devstack.

Standard library only (http.client): the agent's prolog sends one request per job start and must
stay fast; `import requests` alone costs more than that whole request. Usage::

    from lm_common.api import ApiClient, ClientCredentials, TokenCache
    tokens = ClientCredentials(issuer, client_id, client_secret, timeout=10,
                               cache=TokenCache(directory, issuer, client_id))  # cache optional
    api = ApiClient("https://lm.example.org", tokens, timeout=10)
    api.get("/lm/configurations")               # body of a 2xx answer, else ApiError
    api.get_all("/lm/products")                 # every page of a list (X-Pagination)
    response = api.request("POST", "/lm/jobs", json={...})   # any status: the caller decides

Tokens come from a `TokenSource` (`token()`, and `renew()` after a 401): `ClientCredentials`
(OIDC discovery of the issuer's token endpoint, the client_credentials grant, an optional
on-disk cache shared by processes), `StaticToken`, or another source (a person's stored login).
A 401 answer to a token the source did not just fetch is retried once with a renewed one.

Errors: `ApiUnreachable` (no answer: refused, timeout, DNS, TLS) and `TokenError` (discovery or
token endpoint failed) are `ApiError`s; `get`/`post`/`put`/`delete` raise `ApiError` with
`.status` for any non-2xx answer. Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json as jsonlib
import os
import socket
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

DISCOVERY_PATH = "/.well-known/openid-configuration"
# A token is replaced this long before it expires (at most half its lifetime).
EXPIRY_MARGIN_SECONDS = 60
# What a token answer without expires_in is assumed to live.
DEFAULT_TOKEN_LIFETIME = 300
MAX_PAGE_SIZE = 100


class ApiError(Exception):
    """The API (or the token endpoint) did not do what was asked; the message says why."""

    def __init__(self, message: str, status: int | None = None, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class ApiUnreachable(ApiError):
    """No HTTP answer at all: connection refused, timeout, unknown host, TLS failure.

    `reason` is the short cause (`Connection refused`, `no answer in time`) for callers that
    word their own line.
    """

    def __init__(self, message: str, url: str, reason: str) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class TokenError(ApiError):
    """No access token: discovery or the token endpoint failed or refused the credentials.

    `response` is the endpoint's answer, when there was one.
    """

    def __init__(self, message: str, response: ApiResponse | None = None) -> None:
        super().__init__(message, status=response.status if response else None)
        self.response = response


class DiscoveryError(TokenError):
    """The issuer has no usable OpenID discovery document (wrong issuer URL?)."""


@dataclass
class ApiResponse:
    """One HTTP answer; `body` is the decoded JSON (`is_json`), else the text."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""
    reason: str = ""
    is_json: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The API's error message (`{"message": ...}`), or the raw text of the answer."""
        if isinstance(self.body, dict):
            text = self.body.get("message") or self.body.get("error_description")
            return str(text or self.body.get("error") or self.status)
        return str(self.body or self.status)


def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    ca_file: str | None = None,
) -> ApiResponse:
    """One HTTP exchange on a fresh connection; ApiUnreachable when no answer comes back."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection = _connect(parts.scheme, parts.netloc, timeout, ca_file)
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            answer = connection.getresponse()
            raw = answer.read()
            answer_headers = {name.lower(): value for name, value in answer.getheaders()}
        finally:
            connection.close()
    except TimeoutError:
        raise ApiUnreachable(
            f"no answer from {url} within {timeout:g}s", url, "no answer in time"
        ) from None
    except ConnectionRefusedError:
        raise ApiUnreachable(
            f"cannot reach {url}: connection refused", url, "Connection refused"
        ) from None
    except socket.gaierror as error:
        raise ApiUnreachable(
            f"cannot reach {url}: unknown host ({error.strerror})", url, str(error.strerror)
        ) from None
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ApiUnreachable(f"cannot reach {url}: {error}", url, reason) from None
    decoded, is_json = decode_body(raw, answer_headers)
    return ApiResponse(answer.status, decoded, answer_headers, url, answer.reason, is_json)


def _connect(
    scheme: str, netloc: str, timeout: float, ca_file: str | None
) -> http.client.HTTPConnection:
    if scheme == "https":
        import ssl  # only TLS deployments pay for it

        context = ssl.create_default_context(cafile=ca_file)
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    return http.client.HTTPConnection(netloc, timeout=timeout)


def decode_body(raw: bytes, headers: Mapping[str, str]) -> tuple[Any, bool]:
    """(the JSON, True) when the answer says it is JSON and is; else (its text, False)."""
    text = raw.decode("utf-8", errors="replace")
    if "json" in headers.get("content-type", ""):
        try:
            return jsonlib.loads(text), True
        except ValueError:
            pass
    return text.strip(), False


def discover(issuer: str, *, timeout: float, ca_file: str | None = None) -> dict[str, Any]:
    """The issuer's OpenID configuration (`{issuer}/.well-known/openid-configuration`)."""
    response = send("GET", issuer + DISCOVERY_PATH, timeout=timeout, ca_file=ca_file)
    if response.status != 200:
        raise DiscoveryError(
            f"no OpenID discovery document at {issuer}: {response.status}", response
        )
    if not isinstance(response.body, dict) or not isinstance(
        response.body.get("token_endpoint"), str
    ):
        raise DiscoveryError(
            f"the discovery document at {issuer} names no token_endpoint", response
        )
    return response.body


class TokenSource(Protocol):
    """Where an ApiClient gets its bearer tokens."""

    def token(self) -> str | None:
        """The token to send (None: send none, and let the API answer 401)."""

    def renew(self) -> str | None:
        """After a 401 to the last token: another one worth a retry, or None."""


@dataclass
class StaticToken:
    """One token given by the user (or none); the API's 401 is final."""

    value: str | None

    def token(self) -> str | None:
        return self.value

    def renew(self) -> str | None:
        return None


class TokenCache:
    """One OS user's cached token for one issuer and client, in a 0600 JSON file.

    The configured directory is used when we can write there; otherwise a private
    `/tmp/license-manager-{uid}` (0700). When neither works a token is simply fetched every
    run. The file also keeps the token endpoint found by discovery.
    """

    def __init__(self, directory: str, issuer: str, client_id: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._uid = os.geteuid()
        self._directory = directory
        self._path: str | None = None

    @property
    def path(self) -> str | None:
        """The cache file, after choosing a usable directory (None when there is none)."""
        if self._path is None:
            candidates = ((self._directory, False), (self._private_fallback(), True))
            for directory, must_own in candidates:
                if _usable_directory(directory, self._uid, must_own):
                    self._path = os.path.join(directory, f"token-{self._uid}.json")
                    break
        return self._path

    def _private_fallback(self) -> str:
        return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"license-manager-{self._uid}")

    def read(self) -> dict[str, Any]:
        """The cached entry of this issuer and client ({} when absent, foreign or unreadable)."""
        path = self.path
        if path is None:
            return {}
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return {}
        with os.fdopen(descriptor, encoding="utf-8") as stream:
            status = os.fstat(stream.fileno())
            # Another user's file, or one others could have written: never trust it.
            if status.st_uid != self._uid or status.st_mode & 0o077:
                return {}
            try:
                entry = jsonlib.load(stream)
            except ValueError:
                return {}
        if not isinstance(entry, dict):
            return {}
        if entry.get("issuer") != self.issuer or entry.get("client_id") != self.client_id:
            return {}
        return entry

    def write(self, **entry: Any) -> None:
        """Replace the cache atomically: concurrent prologs read either the old or the new file."""
        path = self.path
        if path is None:
            return
        entry.update(issuer=self.issuer, client_id=self.client_id)
        temporary = f"{path}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # left over by a crashed process that had our pid
        try:
            descriptor = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
            )
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                jsonlib.dump(entry, stream)
            os.replace(temporary, path)
        except OSError:
            # A cache we cannot write only costs a token request next time.
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _usable_directory(directory: str, uid: int, must_own: bool) -> bool:
    """True when `directory` exists (or can be made, 0700) and we may create files in it.

    A directory in a world-writable place (`must_own`) must be ours and not a symlink, so that
    nobody else can prepare it for us.
    """
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        status = os.lstat(directory)
    except OSError:
        return False
    # lstat: a symlink is not a directory here, wherever it points.
    if must_own and (status.st_uid != uid or not stat.S_ISDIR(status.st_mode)):
        return False
    return os.access(directory, os.W_OK | os.X_OK)


class ClientCredentials:
    """Tokens of an OAuth client (client_credentials grant) at the issuer's discovered endpoint.

    Kept in memory and, with a `cache`, on disk for the next process (the agent's hooks run
    once per job). `token_requests` counts the tokens fetched: 0 when a cache served.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float,
        audience: str | None = None,
        ca_file: str | None = None,
        cache: TokenCache | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.audience = audience
        self.ca_file = ca_file
        self.cache = cache
        self.token_requests = 0
        self._entry: dict[str, Any] = {}  # token_endpoint, access_token, refresh_at
        self._fetched_last = False

    def token(self) -> str:
        entry = self._entry or (self.cache.read() if self.cache else {})
        self._entry = entry
        token, refresh_at = entry.get("access_token"), entry.get("refresh_at")
        fresh = isinstance(refresh_at, int | float) and time.time() < refresh_at
        if isinstance(token, str) and fresh:
            self._fetched_last = False
            return token
        return self._fetch()

    def renew(self) -> str | None:
        """A new token unless the rejected one was just fetched (then a retry cannot help)."""
        if self._fetched_last:
            return None
        return self._fetch()

    def _fetch(self) -> str:
        """A new access token from the token endpoint, kept in memory and in the cache."""
        endpoint = self._entry.get("token_endpoint")
        if not isinstance(endpoint, str):
            discovered = discover(self.issuer, timeout=self.timeout, ca_file=self.ca_file)
            endpoint = discovered["token_endpoint"]
        form = {"grant_type": "client_credentials"}
        if self.audience:
            form["audience"] = self.audience
        # RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
        credentials = ":".join(
            quote(part, safe="") for part in (self.client_id, self.client_secret)
        )
        response = send(
            "POST",
            endpoint,
            body=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            },
            timeout=self.timeout,
            ca_file=self.ca_file,
        )
        body = response.body if isinstance(response.body, dict) else {}
        token = body.get("access_token")
        if not response.ok or not isinstance(token, str):
            raise TokenError(
                f"token endpoint {endpoint} refused client {self.client_id!r}: "
                f"{response.status} {response.message}",
                response,
            )
        self.token_requests += 1
        self._fetched_last = True
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh_at = time.time() + lifetime - min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
        self._entry = {"token_endpoint": endpoint, "access_token": token, "refresh_at": refresh_at}
        if self.cache is not None:
            self.cache.write(**self._entry)
        return token


class ApiClient:
    """JSON requests to the API at `base_url`, with bearer tokens from `tokens` (None: none)."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource | None,
        *,
        timeout: float,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.ca_file = ca_file

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one request; on a 401 to a token that may be stale, renew it and retry once."""
        url = self.base_url + path
        query = {key: value for key, value in (params or {}).items() if value is not None}
        if query:
            url += "?" + urlencode(query, doseq=True)
        body = None if json is None else jsonlib.dumps(json).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        token = self.tokens.token() if self.tokens else None
        response = self._send(method, url, body, headers, token)
        if response.status == 401 and self.tokens is not None:
            # Revoked, or signed by a key the API no longer trusts: one fresh token, one retry.
            renewed = self.tokens.renew()
            if renewed is not None:
                response = self._send(method, url, body, headers, renewed)
        return response

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], token: str | None
    ) -> ApiResponse:
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        return send(
            method, url, body=body, headers=headers, timeout=self.timeout, ca_file=self.ca_file
        )

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.expect_ok(self.request("GET", path, params=params), "GET", path)

    def post(self, path: str, json: Any) -> Any:
        return self.expect_ok(self.request("POST", path, json=json), "POST", path)

    def put(self, path: str, json: Any) -> Any:
        return self.expect_ok(self.request("PUT", path, json=json), "PUT", path)

    def delete(self, path: str) -> Any:
        return self.expect_ok(self.request("DELETE", path), "DELETE", path)

    def get_all(
        self, path: str, params: Mapping[str, Any] | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> list[Any]:
        """Every item of a paged list (follows the X-Pagination header page by page)."""
        items: list[Any] = []
        page = 1
        while True:
            query = {**(params or {}), "page": page, "page_size": page_size}
            response = self.request("GET", path, params=query)
            items.extend(self.expect_ok(response, "GET", path))
            next_page = pagination(response).get("next_page")
            if not next_page:
                return items
            page = next_page

    @staticmethod
    def expect_ok(response: ApiResponse, method: str, path: str) -> Any:
        """The body of a 2xx answer; else ApiError with the status, message and field errors."""
        if not response.ok:
            errors = response.body.get("errors") if isinstance(response.body, dict) else None
            raise ApiError(
                f"{method} {path} answered {response.status}: {response.message}",
                status=response.status,
                errors=errors,
            )
        return response.body


def pagination(response: ApiResponse) -> dict[str, Any]:
    """A list answer's X-Pagination metadata ({} when absent or unreadable)."""
    try:
        value = jsonlib.loads(response.headers.get("x-pagination") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
