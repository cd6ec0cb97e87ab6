"""LM_OIDC_ISSUER: tokens of an external OIDC provider (a real HTTP server with its own keys)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from backend import auth, create_app
from backend.settings import Settings

BOOKING_READ = "license-manager:booking:read"
REALM = "/realms/hpc"  # Keycloak-style issuer path: discovery lives below it


def _new_key() -> RSAKey:
    key = RSAKey.generate_key(2048)
    key.ensure_kid()
    return key


@dataclass
class Provider:
    """What the fake provider publishes, and how often its JWKS was fetched."""

    url: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    jwks_fetches: int = 0
    down: bool = False

    def token(self, key: RSAKey | None = None, *, kid: str | None = None, **claims: object) -> str:
        """A token of this provider, Keycloak-style: the cluster in `azp`, rights in `scope`."""
        key = key or self.keys[0]
        now = int(time.time())
        payload = {"iss": self.url, "azp": "cluster-a", "scope": BOOKING_READ, "iat": now}
        payload |= {"exp": now + 300, **claims}
        return jwt.encode({"alg": "RS256", "kid": kid or key.kid}, payload, key)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class ProviderHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if provider.down:
                self.send_error(503)
                return
            if self.path == f"{REALM}/.well-known/openid-configuration":
                body = {"issuer": provider.url, "jwks_uri": f"{provider.url}/certs"}
            elif self.path == f"{REALM}/certs":
                provider.jwks_fetches += 1
                body = {"keys": [key.as_dict(private=False) for key in provider.keys]}
            else:
                self.send_error(404)
                return
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return ProviderHandler


@pytest.fixture(scope="module")
def provider_server() -> Iterator[Provider]:
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}{REALM}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(provider_server: Provider) -> Provider:
    """The provider with one fresh key and a zeroed fetch counter."""
    provider_server.keys = [_new_key()]
    provider_server.jwks_fetches = 0
    provider_server.down = False
    return provider_server


def _api(database_url: str, provider: Provider, min_refresh: int) -> Flask:
    settings = Settings.from_env(
        database_url=database_url,
        public_url="http://lm.test",
        oidc_issuer=provider.url,
        oidc_jwks_min_refresh=min_refresh,
    )
    return create_app(settings)


def _bookings(api: Flask, token: str):
    return api.test_client().get("/lm/bookings", headers={"Authorization": f"Bearer {token}"})


def test_provider_token_is_accepted_with_keys_fetched_once(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=60)
    for _ in range(3):
        assert _bookings(api, provider.token()).status_code == 200
    assert provider.jwks_fetches == 1


def test_rotated_key_is_fetched_when_a_token_names_it(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=0)
    assert _bookings(api, provider.token()).status_code == 200
    rotated = _new_key()
    provider.keys = [rotated]
    assert _bookings(api, provider.token(rotated)).status_code == 200
    assert provider.jwks_fetches == 2


def test_unknown_kids_do_not_hammer_the_provider(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=3600)
    assert _bookings(api, provider.token()).status_code == 200
    intruder = _new_key()
    for attempt in range(20):
        response = _bookings(api, provider.token(intruder, kid=f"garbage-{attempt}"))
        assert response.status_code == 401
    assert provider.jwks_fetches == 1


def test_token_with_a_known_kid_but_foreign_signature_is_401(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=60)
    forged = provider.token(_new_key(), kid=provider.keys[0].kid)
    assert _bookings(api, forged).status_code == 401


def test_provider_token_for_another_issuer_is_401(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=60)
    response = _bookings(api, provider.token(iss="http://127.0.0.1:1/realms/other"))
    assert response.status_code == 401


def test_provider_scope_without_the_permission_is_403(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=60)
    response = _bookings(api, provider.token(scope="openid profile"))
    assert response.status_code == 403


def test_unreachable_provider_is_503_and_retried_later(app, database_url, provider):
    provider.down = True
    api = _api(database_url, provider, min_refresh=0)
    response = _bookings(api, provider.token())
    assert response.status_code == 503
    assert "identity provider unavailable" in response.json["message"]
    provider.down = False
    assert _bookings(api, provider.token()).status_code == 200


def test_built_in_issuer_is_disabled(app, database_url, provider):
    api = _api(database_url, provider, min_refresh=60)
    http = api.test_client()
    for response in (
        http.post("/lm/oauth/token", data={"grant_type": "client_credentials"}),
        http.get("/lm/oauth/jwks"),
        http.get("/.well-known/openid-configuration"),
    ):
        assert response.status_code == 404
        assert provider.url in response.json["message"]
    with api.app_context(), pytest.raises(RuntimeError, match="LM_OIDC_ISSUER"):
        auth.issue_token("cluster-a", [BOOKING_READ])


def test_built_in_tokens_are_refused_when_a_provider_issues_them(
    app, database_url, provider, auth_headers
):
    api = _api(database_url, provider, min_refresh=60)
    response = api.test_client().get("/lm/bookings", headers=auth_headers(BOOKING_READ))
    assert response.status_code == 401
