"""Bearer-token authentication and permissions for the API.

Tokens come from the built-in issuer (the default: this backend signs them itself and serves
discovery, JWKS and a client_credentials token endpoint) or from an external OIDC provider
(LM_OIDC_ISSUER). Either way each request's token is checked locally against cached keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Flask, current_app
from flask_smorest import Api

from backend.auth.cli import clients_cli, users_cli
from backend.auth.clients import ClientLiveness
from backend.auth.guard import SECURITY_SCHEME, current_identity, ensure_cluster_access, require
from backend.auth.issuer import blp as issuer_blp
from backend.auth.issuer import create_authorization_server
from backend.auth.keys import load_key_file, load_or_create_database_key
from backend.auth.permissions import (
    Identity,
    has_permission,
    may_access_cluster,
    may_read_cluster,
    validate_permission_names,
    visible_cluster,
)
from backend.auth.provider import ProviderKeySource
from backend.auth.tokens import (
    BuiltinIssuer,
    BuiltinKeySource,
    InvalidTokenError,
    TokenVerifier,
)
from backend.auth.verification import blp as verification_blp
from backend.extensions import db, limiter
from backend.settings import Settings
from lm_common.facts import ADMIN_PERMISSION, UnknownPermissionError

__all__ = [
    "ADMIN_PERMISSION",
    "Identity",
    "InvalidTokenError",
    "UnknownPermissionError",
    "current_identity",
    "ensure_cluster_access",
    "has_permission",
    "init_app",
    "issue_token",
    "may_access_cluster",
    "may_read_cluster",
    "require",
    "validate_permission_names",
    "visible_cluster",
]


@dataclass
class AuthState:
    """Per-app auth machinery, kept in app.extensions so parsed keys live as long as the process."""

    settings: Settings
    verifier: TokenVerifier
    # Both None when an external provider (LM_OIDC_ISSUER) issues the tokens.
    issuer: BuiltinIssuer | None = None
    authorization_server: AuthorizationServer | None = None


def _builtin_key_source(settings: Settings) -> BuiltinKeySource:
    if settings.signing_key_file:
        key_file = settings.signing_key_file
        return BuiltinKeySource(lambda: load_key_file(key_file))
    return BuiltinKeySource(lambda: load_or_create_database_key(db.session))


def _auth_state(app: Flask, settings: Settings) -> AuthState:
    login_clients = frozenset({settings.cli_client_id})
    if settings.oidc_issuer:
        provider = ProviderKeySource(settings.oidc_issuer, settings.oidc_jwks_min_refresh)
        verifier = TokenVerifier(
            provider,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            login_clients=login_clients,
        )
        return AuthState(settings, verifier)
    keys = _builtin_key_source(settings)
    issuer = BuiltinIssuer(
        keys,
        issuer=settings.public_url,
        audience=settings.oidc_audience,
        lifetime=settings.token_lifetime,
    )
    verifier = TokenVerifier(
        keys,
        issuer=settings.public_url,
        audience=settings.oidc_audience,
        login_clients=login_clients,
        client_exists=ClientLiveness(db.session, settings.client_recheck),
    )
    server = create_authorization_server(app, issuer, settings)
    return AuthState(settings, verifier, issuer, server)


def issue_token(client_id: str, permissions: Iterable[str], lifetime: int | None = None) -> str:
    """Sign a token of the built-in issuer for `client_id` (needs an app context)."""
    issuer = current_app.extensions["license_manager_auth"].issuer
    if issuer is None:
        raise RuntimeError("tokens come from LM_OIDC_ISSUER; the built-in issuer is disabled")
    return issuer.issue(client_id, permissions, lifetime)


def init_app(app: Flask, api: Api) -> None:
    """Set up token validation, document the bearer scheme, register issuer endpoints and CLI."""
    settings: Settings = app.config["LM_SETTINGS"]
    app.extensions["license_manager_auth"] = _auth_state(app, settings)
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    limiter.init_app(app)
    api.register_blueprint(issuer_blp)
    app.register_blueprint(verification_blp)
    app.cli.add_command(clients_cli)
    app.cli.add_command(users_cli)
