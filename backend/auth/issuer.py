"""The built-in token issuer: OIDC discovery, JWKS, the OAuth2 token endpoint (client_credentials
for clusters; device_code and refresh_token for people through lm-cli), device and revocation."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, InsecureTransportError, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import Flask, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from backend.auth import client_auth
from backend.auth.clients import CLIENT_ID_PATTERN, find_client, verify_secret
from backend.auth.device import (
    DEVICE_PATH,
    PUBLIC_CLIENT_GRANTS,
    REVOCATION_PATH,
    DeviceEndpoint,
    DeviceGrant,
    PublicCliClient,
    RefreshGrant,
    Revocation,
    new_refresh_token,
    person_scope,
    save_refresh_token,
)
from backend.auth.keys import SIGNING_ALGORITHM
from backend.auth.tokens import BuiltinIssuer
from backend.extensions import db, limiter
from backend.models import OAuthClient, Person
from backend.settings import Settings

TOKEN_PATH = "/lm/oauth/token"
JWKS_PATH = "/lm/oauth/jwks"
GRANT_TYPE = "client_credentials"
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

blp = Blueprint(
    "oauth",
    __name__,
    description="Built-in token issuer (disabled when LM_OIDC_ISSUER names an external one)",
)


class IssuerClient(ClientMixin):
    """Authlib's view of a stored client: client_credentials only, authenticated by its secret."""

    def __init__(self, row: OAuthClient) -> None:
        self.client_id = row.client_id
        self.row_id = row.id
        self._secret_hash = row.secret_hash
        self._permissions = row.permissions.split()

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """All the client's permissions, or the requested subset; None (invalid_scope) beyond."""
        if not scope:
            return " ".join(self._permissions)
        requested = scope.split()
        if not set(requested) <= set(self._permissions):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return verify_secret(client_secret, self._secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in CLIENT_AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def check_response_type(self, response_type: str) -> bool:
        return False


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)


def _query_client(client_id: str) -> ClientMixin | None:
    settings: Settings = current_app.config["LM_SETTINGS"]
    if client_id == settings.cli_client_id:
        return PublicCliClient(client_id)
    row = find_client(db.session, client_id) if CLIENT_ID_PATTERN.match(client_id) else None
    return IssuerClient(row) if row else None


def _client_auth_method(
    read_credentials: Callable[[Any], tuple[str | None, str | None]],
) -> Callable[[Any, Any], IssuerClient | None]:
    """An authlib client authentication method reading credentials with `read_credentials`;
    every failure is authlib's invalid_client (401), unknown client and wrong secret alike."""

    def authenticate_client(query_client: Any, oauth_request: Any) -> IssuerClient | None:
        client_id, secret = read_credentials(oauth_request)
        row = client_auth.authenticate(client_id, secret, request.remote_addr)
        return IssuerClient(row) if row else None

    return authenticate_client


def _authenticate_public(query_client: Any, request: Any) -> ClientMixin | None:
    """ "none" (the login client, no secret): an unknown client_id also gets invalid_client, 401."""
    client_id = request.payload.client_id
    if not client_id or request.payload.data.get("client_secret"):
        return None
    return query_client(client_id)


def create_authorization_server(
    app: Flask, issuer: BuiltinIssuer, settings: Settings
) -> AuthorizationServer:
    """Authlib's endpoints, handing out our JWTs signed with the shared key."""

    def access_token(client: ClientMixin, grant_type: str, user: Any, scope: str) -> str:
        if isinstance(user, Person):
            permissions = person_scope(user, scope).split()
            return issuer.issue_for_person(user.name, client.get_client_id(), permissions)
        row_id = client.row_id if isinstance(client, IssuerClient) else None
        return issuer.issue(client.get_client_id(), scope.split(), client_row_id=row_id)

    def save_token(token: dict[str, Any], request: Any) -> None:
        """Access tokens are self-contained JWTs; only people's refresh tokens are stored."""
        lifetime = settings.refresh_token_lifetime
        save_refresh_token(token, request.user, request.client.get_client_id(), lifetime)

    server = AuthorizationServer(app, query_client=_query_client, save_token=save_token)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(DeviceGrant)
    server.register_grant(RefreshGrant)
    server.register_endpoint(DeviceEndpoint(server, settings.public_url))
    server.register_endpoint(Revocation)
    server.register_client_auth_method(
        "client_secret_basic", _client_auth_method(client_auth.basic_credentials)
    )
    server.register_client_auth_method(
        "client_secret_post", _client_auth_method(client_auth.form_credentials)
    )
    server.register_client_auth_method("none", _authenticate_public)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token,
            refresh_token_generator=new_refresh_token,
            expires_generator=issuer.lifetime,
        ),
    )
    return server


def _builtin_issuer() -> tuple[BuiltinIssuer, AuthorizationServer]:
    """The built-in issuer's parts, or a clear 404 when an external provider issues tokens."""
    auth = current_app.extensions["license_manager_auth"]
    if auth.issuer is None or auth.authorization_server is None:
        external = auth.settings.oidc_issuer
        message = f"the built-in issuer is disabled: tokens come from {external}"
        abort(http.HTTPStatus.NOT_FOUND, message=message)
    return auth.issuer, auth.authorization_server


class DiscoverySchema(Schema):
    issuer = fields.String()
    token_endpoint = fields.String()
    device_authorization_endpoint = fields.String()
    revocation_endpoint = fields.String()
    jwks_uri = fields.String()
    grant_types_supported = fields.List(fields.String())
    token_endpoint_auth_methods_supported = fields.List(fields.String())
    id_token_signing_alg_values_supported = fields.List(fields.String())


class JwksSchema(Schema):
    keys = fields.List(fields.Dict(), metadata={"description": "Public RSA keys (RFC 7517)"})


@blp.route("/.well-known/openid-configuration")
class Discovery(MethodView):
    @blp.response(200, DiscoverySchema)
    def get(self) -> dict[str, Any]:
        """Where clients get tokens and the API's public keys (OpenID Connect discovery)."""
        issuer, _ = _builtin_issuer()
        return {
            "issuer": issuer.issuer,
            "token_endpoint": f"{issuer.issuer}{TOKEN_PATH}",
            "device_authorization_endpoint": f"{issuer.issuer}{DEVICE_PATH}",
            "revocation_endpoint": f"{issuer.issuer}{REVOCATION_PATH}",
            "jwks_uri": f"{issuer.issuer}{JWKS_PATH}",
            "grant_types_supported": [GRANT_TYPE, *PUBLIC_CLIENT_GRANTS],
            "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
            "id_token_signing_alg_values_supported": [SIGNING_ALGORITHM],
        }


@blp.route(JWKS_PATH)
class Jwks(MethodView):
    @blp.response(200, JwksSchema)
    def get(self) -> dict[str, Any]:
        """The public keys that verify tokens of the built-in issuer."""
        issuer, _ = _builtin_issuer()
        return issuer.keys.jwks()


def _token_form(grant_type: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """The form of one grant: grant_type, its own fields (all required), optional scope."""
    return {
        "type": "object",
        "required": ["grant_type", *fields],
        "properties": {
            "grant_type": {"type": "string", "enum": [grant_type]},
            **fields,
            "scope": {"type": "string", "description": "subset of the permissions"},
        },
    }


NON_EMPTY = {"type": "string", "minLength": 1}
TOKEN_REQUEST_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "oneOf": [
                        # Client id and secret by HTTP Basic, or as these form fields.
                        {
                            **_token_form(GRANT_TYPE),
                            "properties": {
                                **_token_form(GRANT_TYPE)["properties"],
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                            },
                        },
                        _token_form(
                            PUBLIC_CLIENT_GRANTS[0], device_code=NON_EMPTY, client_id=NON_EMPTY
                        ),
                        _token_form(
                            PUBLIC_CLIENT_GRANTS[1], refresh_token=NON_EMPTY, client_id=NON_EMPTY
                        ),
                    ]
                }
            }
        },
    },
    "responses": {
        "200": {"description": '{"access_token", "token_type": "Bearer", "expires_in", "scope"}'},
        "400": {"description": "OAuth2 error: unsupported_grant_type, invalid_request, ..."},
        "401": {"description": "OAuth2 error invalid_client: unknown client or wrong secret"},
        "429": {
            "description": "Too many failed attempts for this client id or from this address "
            "(LM_TOKEN_FAILURE_LIMIT per LM_TOKEN_FAILURE_WINDOW): wait Retry-After seconds"
        },
    },
}


def _form_doc(properties: dict[str, Any], required: list[str], answer: str) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        },
        "responses": {
            "200": {"description": answer},
            "400": {"description": "OAuth2 error (invalid_request, unauthorized_client, ...)"},
            "401": {"description": "OAuth2 error invalid_client: unknown client"},
        },
    }


DEVICE_REQUEST_DOC: dict[str, Any] = _form_doc(
    {
        "client_id": {"type": "string", "description": "the login client (LM_CLI_CLIENT_ID)"},
        "scope": {"type": "string", "description": "optional subset of the person's permissions"},
    },
    ["client_id"],
    '{"device_code", "user_code", "verification_uri", "verification_uri_complete", '
    '"expires_in", "interval"}',
)
DEVICE_REQUEST_DOC["responses"]["429"] = {
    "description": "Too many device codes asked from this address (LM_LOGIN_RATE_LIMIT)"
}
REVOCATION_REQUEST_DOC = _form_doc(
    {
        "token": {"type": "string", "description": "the refresh token"},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
        "client_id": {"type": "string", "description": "the login client (LM_CLI_CLIENT_ID)"},
    },
    ["token", "client_id"],
    "{} (also for a token that was unknown or already revoked)",
)


@blp.route(TOKEN_PATH)
class Token(MethodView):
    @blp.doc(**TOKEN_REQUEST_DOC)
    def post(self) -> Any:
        """Exchange client credentials for a bearer token (OAuth2 client_credentials grant).

        Authenticate with HTTP Basic (client_secret_basic) or form fields (client_secret_post).
        """
        return _oauth_answer(lambda server: server.create_token_response())


@blp.route(DEVICE_PATH)
class DeviceAuthorization(MethodView):
    @limiter.limit(lambda: current_app.config["LM_SETTINGS"].login_rate_limit)
    @blp.doc(**DEVICE_REQUEST_DOC)
    def post(self) -> Any:
        """Start a person's login (RFC 8628): a device code for lm-cli, a user code to confirm.

        Only the public login client (LM_CLI_CLIENT_ID, no secret) may ask.
        """
        return _oauth_answer(
            lambda server: server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)
        )


@blp.route(REVOCATION_PATH)
class Revoke(MethodView):
    @blp.doc(**REVOCATION_REQUEST_DOC)
    def post(self) -> Any:
        """Revoke a person's refresh token (RFC 7009), as `lm-cli logout` does."""
        return _oauth_answer(
            lambda server: server.create_endpoint_response(Revocation.ENDPOINT_NAME)
        )


def _oauth_answer(respond: Callable[[AuthorizationServer], Any]) -> Any:
    """One of authlib's endpoint answers; 404 without the built-in issuer, 400 over plain HTTP."""
    _, server = _builtin_issuer()
    try:
        return respond(server)
    except InsecureTransportError:
        return _plain_http_refused()


def _plain_http_refused() -> Any:
    """OAuth's answer, not a 500, when a client secret arrives over plain HTTP (RFC 6749 2.3.1)."""
    answer = jsonify(
        error="invalid_request",
        error_description="the token endpoint needs HTTPS: serve the API over HTTPS or behind a "
        "TLS proxy (LM_TRUSTED_PROXIES), or allow plain HTTP on a trusted network with "
        "AUTHLIB_INSECURE_TRANSPORT=1",
    )
    answer.status_code = http.HTTPStatus.BAD_REQUEST
    answer.headers["Cache-Control"] = "no-store"
    return answer
