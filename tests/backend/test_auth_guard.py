"""Bearer-token checks of the `require` guard, on a real app and database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.views import MethodView
from flask_smorest import Blueprint
from joserfc import jwt
from joserfc.jwk import RSAKey

from backend import auth, create_app
from backend.auth.tokens import BuiltinIssuer, BuiltinKeySource
from backend.settings import Settings
from tests.backend.conftest import PUBLIC_URL

guarded = Blueprint("guarded", __name__, description="Test-only endpoint behind auth.require")


@guarded.route("/<cluster>")
class GuardedJobs(MethodView):
    @auth.require("job", "read")
    @guarded.response(200)
    def get(self, cluster: str) -> dict[str, object]:
        """Who is calling.

        Answers the caller's identity when it may see the cluster's jobs.
        """
        auth.ensure_cluster_access(cluster)
        identity = auth.current_identity()
        return {"client_id": identity.client_id, "permissions": sorted(identity.permissions)}


def _app_with_guarded_route(database_url: str, **settings: object) -> Flask:
    app = create_app(Settings.from_env(database_url=database_url, **settings))
    app.config["TESTING"] = True
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    api.register_blueprint(guarded, url_prefix="/lm/guarded")
    return app


@pytest.fixture(scope="module")
def guarded_app(app: Flask, database_url: str) -> Flask:
    """A second API process on the session database (same public URL) with a guarded route."""
    return _app_with_guarded_route(database_url, public_url=PUBLIC_URL)


@pytest.fixture
def http(guarded_app: Flask) -> FlaskClient:
    return guarded_app.test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signing_key(app: Flask) -> RSAKey:
    with app.app_context():
        return app.extensions["license_manager_auth"].issuer.keys.signing_key()


def _signed(app: Flask, claims: dict[str, object], **header: str) -> str:
    """A token with exactly these claims, signed with the app's real key."""
    key = _signing_key(app)
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key)


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": PUBLIC_URL, "sub": "cluster-a", "iat": now, "exp": now + 300, **overrides}


def _issuer(app: Flask, *, issuer: str = PUBLIC_URL, key: RSAKey | None = None) -> BuiltinIssuer:
    keys = app.extensions["license_manager_auth"].issuer.keys
    if key is not None:
        keys = BuiltinKeySource(lambda: key)
    return BuiltinIssuer(keys, issuer=issuer, audience=None, lifetime=300)


def test_valid_token_reaches_the_view_with_its_identity(http, auth_headers):
    response = http.get("/lm/guarded/cluster-a", headers=auth_headers("license-manager:job:read"))
    assert response.status_code == 200
    assert response.json == {"client_id": "cluster-a", "permissions": ["license-manager:job:read"]}


def test_missing_token_is_401_with_a_bearer_challenge(http):
    response = http.get("/lm/guarded/cluster-a")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["code"] == 401
    assert "missing bearer token" in response.json["message"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token-only"])
def test_malformed_authorization_header_is_401(http, header):
    response = http.get("/lm/guarded/cluster-a", headers={"Authorization": header})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    assert "malformed Authorization header" in response.json["message"]


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.e30.", "....", "ä.ö.ü"])
def test_garbage_token_is_401_not_500(http, token):
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_signed_by_another_key_is_401(guarded_app, http):
    intruder = RSAKey.generate_key(2048)
    intruder.ensure_kid()
    token = _issuer(guarded_app, key=intruder).issue("cluster-a", ["license-manager:admin"])
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401


def test_token_with_our_kid_but_another_key_is_401(guarded_app, http):
    intruder = RSAKey.generate_key(2048)
    our_kid = _signing_key(guarded_app).kid
    token = jwt.encode({"alg": "RS256", "kid": our_kid}, _claims(client_id="cluster-a"), intruder)
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hand_made(alg: str, hmac_key: bytes | None = None) -> str:
    """An admin token with a forged header; HMAC-signed when a key is given, else unsigned."""
    claims = _claims(client_id="cluster-a", permissions=["license-manager:admin"])
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}."
    signing_input += _b64(json.dumps(claims).encode())
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def test_unsigned_alg_none_token_is_401(http):
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(_hand_made("none")))
    assert response.status_code == 401


def test_hmac_token_keyed_with_the_public_key_is_401(guarded_app, http):
    """The classic confusion attack: HS256 'signed' with the published RSA public key."""
    public_pem = _signing_key(guarded_app).as_pem(private=False)
    token = _hand_made("HS256", hmac_key=public_pem)
    assert http.get("/lm/guarded/cluster-a", headers=_bearer(token)).status_code == 401


def test_expired_token_is_401(guarded_app, http):
    with guarded_app.app_context():
        token = auth.issue_token("cluster-a", ["license-manager:admin"], lifetime=-120)
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json["message"] == "token expired"


def test_a_token_accepted_before_is_refused_once_it_expires(guarded_app, http):
    """Verified tokens are remembered, but never past their expiry (30 s leeway included)."""
    with guarded_app.app_context():
        token = auth.issue_token("cluster-a", ["license-manager:admin"], lifetime=-29)
    assert http.get("/lm/guarded/cluster-a", headers=_bearer(token)).status_code == 200
    time.sleep(1.5)  # the passage of time is what is tested: exp + leeway is now behind us
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json["message"] == "token expired"


def test_token_without_expiry_is_401(guarded_app, http):
    claims = _claims(client_id="cluster-a", permissions=["license-manager:admin"])
    del claims["exp"]
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(_signed(guarded_app, claims)))
    assert response.status_code == 401
    assert "'exp'" in response.json["message"]


def test_token_of_another_issuer_is_401(guarded_app, http):
    token = _issuer(guarded_app, issuer="http://elsewhere.test").issue(
        "cluster-a", ["license-manager:admin"]
    )
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(token))
    assert response.status_code == 401
    assert "'iss'" in response.json["message"]


def test_missing_permission_is_403_naming_it(http, auth_headers):
    headers = auth_headers("license-manager:job:create", "license-manager:booking:read")
    response = http.get("/lm/guarded/cluster-a", headers=headers)
    assert response.status_code == 403
    assert response.json["message"] == "missing permission license-manager:job:read"


def test_admin_may_read_any_cluster(http, auth_headers):
    response = http.get(
        "/lm/guarded/cluster-b", headers=auth_headers("license-manager:admin", client_id="ops")
    )
    assert response.status_code == 200
    assert response.json["client_id"] == "ops"


def test_other_clusters_jobs_are_403(http, auth_headers):
    headers = auth_headers("license-manager:job:read", client_id="cluster-a")
    response = http.get("/lm/guarded/cluster-b", headers=headers)
    assert response.status_code == 403
    assert "cluster-b" in response.json["message"]


def test_permissions_from_the_scope_claim(guarded_app, http):
    claims = _claims(client_id="cluster-a", scope="openid license-manager:job:read")
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(_signed(guarded_app, claims)))
    assert response.status_code == 200
    assert response.json["permissions"] == ["license-manager:job:read", "openid"]


def test_cluster_falls_back_to_azp(guarded_app, http):
    claims = _claims(azp="cluster-b", permissions=["license-manager:job:read"])
    response = http.get("/lm/guarded/cluster-b", headers=_bearer(_signed(guarded_app, claims)))
    assert response.status_code == 200
    assert response.json["client_id"] == "cluster-b"


def test_token_naming_no_client_is_401(guarded_app, http):
    claims = _claims(permissions=["license-manager:admin"])
    response = http.get("/lm/guarded/cluster-a", headers=_bearer(_signed(guarded_app, claims)))
    assert response.status_code == 401
    assert "names no client" in response.json["message"]


def test_openapi_documents_bearer_auth_responses_and_permission(http):
    spec = http.get("/lm/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    operation = spec["paths"]["/lm/guarded/{cluster}"]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert {"200", "401", "403"} <= set(operation["responses"])
    assert operation["summary"] == "Who is calling."
    assert operation["description"].startswith("Answers the caller's identity")
    assert "`license-manager:job:read`" in operation["description"]


@pytest.fixture(scope="module")
def audience_app(app: Flask, database_url: str) -> Iterator[Flask]:
    """An API that requires tokens naming it in `aud` (LM_OIDC_AUDIENCE)."""
    yield _app_with_guarded_route(
        database_url, public_url=PUBLIC_URL, oidc_audience="license-manager"
    )


class TestAudience:
    """With LM_OIDC_AUDIENCE set, tokens must name this API in `aud`."""

    def test_own_tokens_carry_and_pass_the_audience(self, audience_app):
        with audience_app.app_context():
            token = auth.issue_token("cluster-a", ["license-manager:job:read"])
        response = audience_app.test_client().get("/lm/guarded/cluster-a", headers=_bearer(token))
        assert response.status_code == 200

    @pytest.mark.parametrize("audience", [None, "another-api", ["another-api", "x"]])
    def test_wrong_or_missing_audience_is_401(self, audience_app, audience):
        claims = _claims(client_id="cluster-a", permissions=["license-manager:admin"])
        if audience is not None:
            claims["aud"] = audience
        token = _signed(audience_app, claims)
        response = audience_app.test_client().get("/lm/guarded/cluster-a", headers=_bearer(token))
        assert response.status_code == 401
        assert "'aud'" in response.json["message"]

    def test_audience_among_several_passes(self, audience_app):
        claims = _claims(
            client_id="cluster-a",
            aud=["another-api", "license-manager"],
            permissions=["license-manager:job:read"],
        )
        token = _signed(audience_app, claims)
        response = audience_app.test_client().get("/lm/guarded/cluster-a", headers=_bearer(token))
        assert response.status_code == 200
