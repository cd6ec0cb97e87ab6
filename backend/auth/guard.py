"""The `require` decorator guarding every endpoint, and the caller's identity for the request."""

from __future__ import annotations

import functools
import http
from collections.abc import Callable
from copy import deepcopy
from typing import Any, NoReturn, TypeVar

from flask import current_app, g, request
from flask_smorest import abort
from flask_smorest.utils import load_info_from_docstring

from backend.auth.permissions import Identity, has_permission, may_access_cluster
from backend.auth.provider import ProviderUnavailableError
from backend.auth.tokens import InvalidTokenError
from lm_common.facts import permission_name

SECURITY_SCHEME = "bearerAuth"
View = TypeVar("View", bound=Callable[..., Any])


def _unauthorized(message: str, error: str | None = None) -> NoReturn:
    challenge = 'Bearer realm="license-manager"'
    if error:
        description = message.replace('"', "'")
        challenge += f', error="{error}", error_description="{description}"'
    abort(http.HTTPStatus.UNAUTHORIZED, message=message, headers={"WWW-Authenticate": challenge})


def _bearer_token() -> str:
    header = request.headers.get("Authorization")
    if not header:
        _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _unauthorized(
            "malformed Authorization header: expected 'Bearer <token>'", "invalid_request"
        )
    return token


def authenticate() -> Identity:
    """Validate the request's bearer token (401 when absent or invalid) and remember the caller."""
    token = _bearer_token()
    try:
        identity = current_app.extensions["license_manager_auth"].verifier.verify(token)
    except InvalidTokenError as error:
        _unauthorized(str(error), "invalid_token")
    except ProviderUnavailableError as error:
        message = f"identity provider unavailable: {error}"
        abort(http.HTTPStatus.SERVICE_UNAVAILABLE, message=message)
    g.lm_identity = identity
    return identity


def current_identity() -> Identity:
    """The caller of the current request, as authenticated by `require`."""
    identity = g.get("lm_identity")
    if identity is None:
        raise RuntimeError("current_identity() outside a view guarded by auth.require")
    return identity


def ensure_cluster_access(cluster_client_id: str) -> None:
    """Abort 403 unless the caller is an admin or the cluster owning the job/booking."""
    if not may_access_cluster(current_identity(), cluster_client_id):
        abort(
            http.HTTPStatus.FORBIDDEN,
            message=f"{current_identity()} may not access cluster "
            f"{cluster_client_id!r}'s jobs and bookings",
        )


def _document(wrapper: Callable[..., Any], permission: str) -> None:
    """Tell flask-smorest's OpenAPI collector about the bearer token, 401/403 and the permission."""
    apidoc = deepcopy(getattr(wrapper, "_apidoc", {}))
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    responses.setdefault(http.HTTPStatus.UNAUTHORIZED, []).append("UNAUTHORIZED")
    responses.setdefault(http.HTTPStatus.FORBIDDEN, []).append("FORBIDDEN")
    description = load_info_from_docstring(wrapper.__doc__ or "").get("description", "")
    note = f"Requires permission `{permission}` (or `license-manager:admin`)."
    manual_doc = apidoc.setdefault("manual_doc", {})
    manual_doc["security"] = [{SECURITY_SCHEME: []}]
    manual_doc["description"] = f"{description}\n\n{note}" if description else note
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]


def require(
    resource: str, action: str, open_when: Callable[[], bool] | None = None
) -> Callable[[View], View]:
    """Guard a view: a valid bearer token holding license-manager:<resource>:<action> (or admin).

    `open_when`: a setting that lets requests without a token in (a documented choice).
    Use it as the top-most decorator of a MethodView method so it runs before argument parsing.
    """
    permission = permission_name(resource, action)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if open_when is not None and open_when():
                return view(*args, **kwargs)
            identity = authenticate()
            if not has_permission(identity, resource, action):
                abort(http.HTTPStatus.FORBIDDEN, message=f"missing permission {permission}")
            return view(*args, **kwargs)

        _document(wrapper, permission)
        return wrapper  # type: ignore[return-value]

    return decorator
