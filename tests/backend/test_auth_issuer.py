"""The built-in issuer: discovery, JWKS, the client_credentials endpoint and the shared key."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from backend import auth, create_app
from backend.auth.clients import NewClient, create_client
from backend.auth.keys import SigningKeyError, load_or_create_database_key
from backend.extensions import db
from backend.models import SigningKey
from backend.settings import Settings, sqlalchemy_url
from tests.backend.conftest import PUBLIC_URL

AGENT_PERMISSIONS = ["license-manager:job:create", "license-manager:booking:read"]


@pytest.fixture
def agent_client(app: Flask, client):
    """A stored OAuth client (the `client` fixture truncates oauth_clients afterwards)."""
    with app.app_context():
        return create_client(db.session, name="cluster-a", permissions=AGENT_PERMISSIONS)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def _token_request(http: FlaskClient, credentials: NewClient, **form: str) -> TestResponse:
    """POST the token endpoint authenticated with HTTP Basic (client_secret_basic)."""
    headers = _basic(credentials.client_id, credentials.client_secret)
    return http.post("/lm/oauth/token", data=form, headers=headers)


def test_discovery_names_the_token_endpoint_and_jwks(client):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json == {
        "issuer": PUBLIC_URL,
        "token_endpoint": f"{PUBLIC_URL}/lm/oauth/token",
        "device_authorization_endpoint": f"{PUBLIC_URL}/lm/oauth/device",
        "revocation_endpoint": f"{PUBLIC_URL}/lm/oauth/revoke",
        "jwks_uri": f"{PUBLIC_URL}/lm/oauth/jwks",
        "grant_types_supported": [
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token",
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def test_jwks_publishes_only_the_public_signing_key(client, auth_headers):
    keys = client.get("/lm/oauth/jwks").json["keys"]
    assert len(keys) == 1
    assert {"kty", "n", "e", "kid", "use", "alg"} == set(keys[0])
    assert keys[0]["alg"] == "RS256"
    token = auth_headers()["Authorization"].removeprefix("Bearer ")
    decoded = jwt.decode(token, KeySet.import_key_set({"keys": keys}), algorithms=["RS256"])
    assert decoded.header["kid"] == keys[0]["kid"]


def test_issued_token_has_the_documented_claims(app):
    with app.app_context():
        token = auth.issue_token("cluster-a", AGENT_PERMISSIONS, lifetime=120)
    claims = jwt.decode(token, _database_key(app)).claims
    assert claims["iss"] == PUBLIC_URL
    assert claims["sub"] == claims["client_id"] == "cluster-a"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["permissions"] == AGENT_PERMISSIONS
    assert claims["scope"] == " ".join(AGENT_PERMISSIONS)


def _database_key(app: Flask) -> RSAKey:
    with app.app_context():
        return load_or_create_database_key(db.session)


def test_token_with_client_secret_basic(client, agent_client):
    response = _token_request(client, agent_client, grant_type="client_credentials")
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == " ".join(AGENT_PERMISSIONS)
    bookings = client.get(
        "/lm/bookings", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert bookings.status_code == 200


def test_token_with_client_secret_post(client, agent_client):
    response = client.post(
        "/lm/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": agent_client.client_id,
            "client_secret": agent_client.client_secret,
        },
    )
    assert response.status_code == 200
    claims = jwt.decode(
        response.json["access_token"], KeySet.import_key_set(client.get("/lm/oauth/jwks").json)
    ).claims
    assert claims["client_id"] == "cluster-a"
    assert claims["permissions"] == AGENT_PERMISSIONS


def test_token_narrowed_to_a_requested_scope(client, agent_client):
    response = _token_request(
        client, agent_client, grant_type="client_credentials", scope="license-manager:booking:read"
    )
    assert response.status_code == 200
    assert response.json["scope"] == "license-manager:booking:read"


def test_scope_beyond_the_clients_permissions_is_invalid_scope(client, agent_client):
    response = _token_request(
        client, agent_client, grant_type="client_credentials", scope="license-manager:admin"
    )
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "credentials",
    [("cluster-a", "wrong-secret"), ("no-such-client", "whatever"), ("cluster-a", "")],
)
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_bad_client_credentials_are_invalid_client(client, agent_client, credentials, method):
    if method == "client_secret_basic":
        response = _token_request(client, NewClient(*credentials), grant_type="client_credentials")
    else:
        client_id, secret = credentials
        form = {"grant_type": "client_credentials", "client_id": client_id}
        response = client.post("/lm/oauth/token", data={**form, "client_secret": secret})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_missing_client_authentication_is_invalid_client(client, agent_client):
    response = client.post("/lm/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "nonsense"])
def test_other_grant_types_are_unsupported(client, agent_client, grant_type):
    response = _token_request(client, agent_client, grant_type=grant_type)
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"


def test_missing_grant_type_is_an_oauth_error(client, agent_client):
    response = _token_request(client, agent_client)
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"


def test_issuer_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/lm/openapi.json").json["paths"]
    assert "post" in paths["/lm/oauth/token"]
    assert "get" in paths["/lm/oauth/jwks"]
    assert "get" in paths["/.well-known/openid-configuration"]


def test_processes_starting_together_create_one_shared_key(postgres, app):
    """Many API processes on a fresh database race to create the key: all get the same one."""
    url = sqlalchemy_url(postgres.ensure_database("lm_key_race"))
    engine = create_engine(url)
    db.metadata.create_all(engine, tables=[SigningKey.__table__])
    kids: list[str] = []
    start = threading.Barrier(6)

    def start_process() -> None:
        with Session(engine) as session:
            start.wait()
            kids.append(load_or_create_database_key(session).kid)

    threads = [threading.Thread(target=start_process) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(SigningKey))
    engine.dispose()
    assert len(set(kids)) == 1
    assert stored == 1


def test_two_api_instances_accept_each_others_tokens(app, database_url, client):
    """Every process behind LM_PUBLIC_URL issues and accepts the same tokens."""
    other = create_app(Settings.from_env(database_url=database_url, public_url=PUBLIC_URL))
    with other.app_context():
        from_other = auth.issue_token("cluster-a", ["license-manager:booking:read"])
    with app.app_context():
        from_first = auth.issue_token("cluster-a", ["license-manager:booking:read"])
    for token, served_by in ((from_other, app), (from_first, other)):
        response = served_by.test_client().get(
            "/lm/bookings", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
    assert other.test_client().get("/lm/oauth/jwks").json == client.get("/lm/oauth/jwks").json


def test_signing_key_file_replaces_the_database_key(app, database_url, tmp_path: Path):
    key = RSAKey.generate_key(2048)
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(key.as_pem(private=True))
    from_file = create_app(
        Settings.from_env(
            database_url=database_url, public_url=PUBLIC_URL, signing_key_file=str(key_file)
        )
    )
    published = from_file.test_client().get("/lm/oauth/jwks").json["keys"]
    assert published[0]["n"] == key.as_dict()["n"]
    with from_file.app_context():
        token = auth.issue_token("cluster-a", ["license-manager:booking:read"])
    jwt.decode(token, key)  # signed with the file's key
    rejected = app.test_client().get("/lm/bookings", headers={"Authorization": f"Bearer {token}"})
    assert rejected.status_code == 401


@pytest.mark.parametrize("content", [b"not a key", None])
def test_unusable_signing_key_file_is_a_clear_error(database_url, tmp_path: Path, content):
    key_file = tmp_path / "signing.pem"
    if content is not None:
        key_file.write_bytes(content)
    broken = create_app(
        Settings.from_env(
            database_url=database_url, public_url=PUBLIC_URL, signing_key_file=str(key_file)
        )
    )
    with broken.app_context(), pytest.raises(SigningKeyError, match="LM_SIGNING_KEY_FILE"):
        auth.issue_token("cluster-a", ["license-manager:admin"])


def test_public_key_file_is_refused(database_url, tmp_path: Path):
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(RSAKey.generate_key(2048).as_pem(private=False))
    broken = create_app(
        Settings.from_env(
            database_url=database_url, public_url=PUBLIC_URL, signing_key_file=str(key_file)
        )
    )
    with broken.app_context(), pytest.raises(SigningKeyError, match="public key"):
        auth.issue_token("cluster-a", ["license-manager:admin"])


REMOTE_HTTP = "http://lm.example.org"  # not localhost: authlib wants TLS for client secrets


def _token_over(http: FlaskClient, credentials: NewClient, **headers: str) -> TestResponse:
    return http.post(
        "/lm/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**_basic(credentials.client_id, credentials.client_secret), **headers},
        base_url=REMOTE_HTTP,
    )


def test_client_secrets_over_plain_http_are_refused_with_an_oauth_error(client, agent_client):
    response = _token_over(client, agent_client)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "HTTPS" in response.json["error_description"]


def test_forwarded_https_is_ignored_unless_the_proxy_is_trusted(client, agent_client):
    response = _token_over(client, agent_client, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 400


def test_behind_a_trusted_tls_proxy_the_token_endpoint_answers(database_url, agent_client):
    settings = Settings.from_env(
        database_url=database_url, public_url="https://lm.example.org", trusted_proxies=1
    )
    proxied = create_app(settings).test_client()
    response = _token_over(proxied, agent_client, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert response.json["token_type"].lower() == "bearer"
