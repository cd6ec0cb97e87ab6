"""HTTP client of the License Manager API, with an OAuth2 client_credentials token cache.

Only the standard library (http.client): the prolog runs once per job start and must stay fast,
and `import requests` alone costs more than the whole request. Usage::

    from agent.api import ApiClient, ApiError, ApiUnreachable
    api = ApiClient(config)                              # config: agent.config.AgentConfig
    configurations = api.get_all("/lm/configurations")   # every page of a list
    api.put("/lm/features/by_client_id", [...])          # body of a 2xx answer, else ApiError
    response = api.request("POST", "/lm/jobs", json={...})   # any status: the caller decides
    response.status, response.body, response.message

Errors: `ApiUnreachable` (no answer: refused, timeout, DNS, TLS) and `TokenError` (discovery or
token endpoint failed) are `ApiError`s; `get`/`post`/`put`/`delete` raise `ApiError` with `.status`
for any non-2xx answer. Not thread-safe: use one client per thread.

Tokens are cached per OS user in `{token_cache_dir}/token-{uid}.json` (0600), reused until shortly
before they expire; the token endpoint comes from `{oidc_issuer}/.well-known/openid-configuration`
and is cached with the token. A 401 from the API drops the cached token and retries once.
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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from agent.config import AgentConfig

DISCOVERY_PATH = "/.well-known/openid-configuration"
# A cached token is replaced this long before it expires (at most half its lifetime).
EXPIRY_MARGIN_SECONDS = 60
MAX_PAGE_SIZE = 100


class ApiError(Exception):
    """The API (or the token endpoint) did not do what was asked; the message says why."""

    def __init__(self, message: str, status: int | None = None, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class ApiUnreachable(ApiError):
    """No HTTP answer at all: connection refused, timeout, unknown host, TLS failure."""


class TokenError(ApiError):
    """No access token: discovery or the token endpoint failed or refused our credentials."""


@dataclass
class ApiResponse:
    """One HTTP answer; `body` is the decoded JSON (or the text when it is not JSON)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

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
    headers: dict[str, str] | None = None,
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
            connection.request(method, target, body=body, headers=headers or {})
            answer = connection.getresponse()
            raw = answer.read()
            answer_headers = {name.lower(): value for name, value in answer.getheaders()}
        finally:
            connection.close()
    except TimeoutError:
        raise ApiUnreachable(f"no answer from {url} within {timeout:g}s") from None
    except ConnectionRefusedError:
        raise ApiUnreachable(f"cannot reach {url}: connection refused") from None
    except socket.gaierror as error:
        raise ApiUnreachable(f"cannot reach {url}: unknown host ({error.strerror})") from None
    except (OSError, http.client.HTTPException) as error:
        raise ApiUnreachable(f"cannot reach {url}: {error}") from None
    return ApiResponse(answer.status, _decode(raw, answer_headers), answer_headers)


def _connect(
    scheme: str, netloc: str, timeout: float, ca_file: str | None
) -> http.client.HTTPConnection:
    if scheme == "https":
        import ssl  # only TLS deployments pay for it

        context = ssl.create_default_context(cafile=ca_file)
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    return http.client.HTTPConnection(netloc, timeout=timeout)


def _decode(raw: bytes, headers: dict[str, str]) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if "json" in headers.get("content-type", ""):
        try:
            return jsonlib.loads(text)
        except ValueError:
            pass
    return text.strip()


class TokenCache:
    """One OS user's cached token for one issuer and client, in a 0600 JSON file.

    The configured directory is used when we can write there; otherwise a private
    `/tmp/license-manager-{uid}` (0700). When neither works the agent simply fetches a token
    every run. The file also keeps the token endpoint found by discovery.
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

    def valid_token(self) -> str | None:
        entry = self.read()
        token = entry.get("access_token")
        refresh_at = entry.get("refresh_at")
        if isinstance(token, str) and isinstance(refresh_at, int | float):
            return token if time.time() < refresh_at else None
        return None

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

    def forget_token(self) -> None:
        """Drop the token (rejected by the API) but keep the discovered endpoint."""
        entry = self.read()
        if entry.pop("access_token", None) is not None:
            entry.pop("refresh_at", None)
            self.write(**entry)


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


class ApiClient:
    """Authenticated JSON requests to the API at `config.api_url`."""

    def __init__(self, config: AgentConfig, cache: TokenCache | None = None) -> None:
        self.config = config
        self.cache = cache or TokenCache(
            config.token_cache_dir, config.oidc_issuer, config.client_id
        )
        self.token_requests = 0  # tokens fetched by this client: 0 when the cache served

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one request with a bearer token; on 401 fetch a new token and retry once."""
        url = self.config.api_url + path
        if params:
            url += "?" + urlencode(params)
        body = None if json is None else jsonlib.dumps(json).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        token = self.cache.valid_token()
        if token is not None:
            response = self._send(method, url, body, headers, token)
            if response.status != 401:
                return response
            self.cache.forget_token()  # revoked, or signed by a key the API no longer trusts
        return self._send(method, url, body, headers, self._fetch_token())

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], token: str
    ) -> ApiResponse:
        return send(
            method,
            url,
            body=body,
            headers={**headers, "Authorization": f"Bearer {token}"},
            timeout=self.config.http_timeout,
            ca_file=self.config.ca_file,
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._expect_ok(self.request("GET", path, params=params), "GET", path)

    def post(self, path: str, json: Any) -> Any:
        return self._expect_ok(self.request("POST", path, json=json), "POST", path)

    def put(self, path: str, json: Any) -> Any:
        return self._expect_ok(self.request("PUT", path, json=json), "PUT", path)

    def delete(self, path: str) -> Any:
        return self._expect_ok(self.request("DELETE", path), "DELETE", path)

    def get_all(
        self, path: str, params: dict[str, Any] | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> list[Any]:
        """Every item of a paged list (follows the X-Pagination header page by page)."""
        items: list[Any] = []
        page = 1
        while True:
            query = {**(params or {}), "page": page, "page_size": page_size}
            response = self.request("GET", path, params=query)
            items.extend(self._expect_ok(response, "GET", path))
            pagination = jsonlib.loads(response.headers.get("x-pagination") or "{}")
            next_page = pagination.get("next_page")
            if not next_page:
                return items
            page = next_page

    @staticmethod
    def _expect_ok(response: ApiResponse, method: str, path: str) -> Any:
        if not response.ok:
            errors = response.body.get("errors") if isinstance(response.body, dict) else None
            raise ApiError(
                f"{method} {path} answered {response.status}: {response.message}",
                status=response.status,
                errors=errors,
            )
        return response.body

    def _fetch_token(self) -> str:
        """A new access token from the token endpoint (client_credentials), cached on disk."""
        endpoint = self.cache.read().get("token_endpoint") or self._discover_token_endpoint()
        form = {"grant_type": "client_credentials"}
        if self.config.oidc_audience:
            form["audience"] = self.config.oidc_audience
        # RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
        credentials = ":".join(
            quote(part, safe="") for part in (self.config.client_id, self.config.client_secret)
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
            timeout=self.config.http_timeout,
            ca_file=self.config.ca_file,
        )
        body = response.body if isinstance(response.body, dict) else {}
        token = body.get("access_token")
        if not response.ok or not isinstance(token, str):
            raise TokenError(
                f"token endpoint {endpoint} refused client {self.config.client_id!r}: "
                f"{response.status} {response.message}",
                status=response.status,
            )
        self.token_requests += 1
        lifetime = body.get("expires_in")
        lifetime = lifetime if isinstance(lifetime, int | float) and lifetime > 0 else 300
        refresh_at = time.time() + lifetime - min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
        self.cache.write(token_endpoint=endpoint, access_token=token, refresh_at=refresh_at)
        return token

    def _discover_token_endpoint(self) -> str:
        url = self.config.oidc_issuer + DISCOVERY_PATH
        response = send("GET", url, timeout=self.config.http_timeout, ca_file=self.config.ca_file)
        endpoint = response.body.get("token_endpoint") if isinstance(response.body, dict) else None
        if not response.ok or not isinstance(endpoint, str):
            raise TokenError(
                f"discovery {url} gave no token_endpoint: {response.status} {response.message}",
                status=response.status,
            )
        return endpoint
