"""Bearer-token authentication and permissions for the API.

Tokens come from the built-in issuer (the default: this backend signs them itself and serves
discovery, JWKS and a client_credentials token endpoint) or from an external OIDC provider
(LM_OIDC_ISSUER). Either way each request's token is checked locally against cached keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, current_app
from flask_smorest import Api

from backend.auth.guard import SECURITY_SCHEME, current_identity, ensure_cluster_access, require
from backend.auth.keys import load_key_file, load_or_create_database_key
from backend.auth.permissions import (
    ADMIN_PERMISSION,
    Identity,
    UnknownPermissionError,
    has_permission,
    may_access_cluster,
    validate_permission_names,
)
from backend.auth.provider import ProviderKeySource
from backend.auth.tokens import BuiltinKeySource, InvalidTokenError, TokenVerifier, sign_token
from backend.extensions import db
from backend.settings import Settings

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
    "require",
    "validate_permission_names",
]


@dataclass
class AuthState:
    """Per-app auth machinery, kept in app.extensions so parsed keys live as long as the process."""

    settings: Settings
    verifier: TokenVerifier
    builtin_keys: BuiltinKeySource | None  # None when an external provider issues the tokens


def _builtin_key_source(settings: Settings) -> BuiltinKeySource:
    if settings.signing_key_file:
        key_file = settings.signing_key_file
        return BuiltinKeySource(lambda: load_key_file(key_file))
    return BuiltinKeySource(lambda: load_or_create_database_key(db.session))


def _auth_state(settings: Settings) -> AuthState:
    if settings.oidc_issuer:
        provider = ProviderKeySource(settings.oidc_issuer, settings.oidc_jwks_min_refresh)
        verifier = TokenVerifier(
            provider, issuer=settings.oidc_issuer, audience=settings.oidc_audience
        )
        return AuthState(settings, verifier, builtin_keys=None)
    keys = _builtin_key_source(settings)
    verifier = TokenVerifier(keys, issuer=settings.public_url, audience=settings.oidc_audience)
    return AuthState(settings, verifier, builtin_keys=keys)


def state() -> AuthState:
    """The current app's auth machinery."""
    return current_app.extensions["license_manager_auth"]


def issue_token(client_id: str, permissions: Iterable[str], lifetime: int | None = None) -> str:
    """Sign a token of the built-in issuer for `client_id` (needs an app context)."""
    auth = state()
    if auth.builtin_keys is None:
        raise RuntimeError("tokens come from LM_OIDC_ISSUER; the built-in issuer is disabled")
    return sign_token(
        auth.builtin_keys.signing_key(),
        issuer=auth.settings.public_url,
        client_id=client_id,
        permissions=permissions,
        lifetime=lifetime or auth.settings.token_lifetime,
        audience=auth.settings.oidc_audience,
    )


def init_app(app: Flask, api: Api) -> None:
    """Set up token validation, document the bearer scheme, register issuer endpoints and CLI."""
    settings: Settings = app.config["LM_SETTINGS"]
    app.extensions["license_manager_auth"] = _auth_state(settings)
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
