"""People's login through lm-cli: the Device Authorization Grant (RFC 8628) on authlib.

lm-cli is a public OAuth client (no secret; its id is LM_CLI_CLIENT_ID). It asks the device
endpoint for a device code and a user code, the person confirms the user code on the
verification page (backend/auth/verification.py) after logging in, and lm-cli polls the token
endpoint until it gets the person's access token and a refresh token. Refresh tokens rotate on
each use and can be revoked (RFC 7009). Codes and refresh tokens are stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, UnauthorizedClientError, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc8628 import (
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)
from sqlalchemy import delete, select

from backend.extensions import db
from backend.models import DeviceAuthorization, Person, RefreshToken

DEVICE_PATH = "/lm/oauth/device"
REVOCATION_PATH = "/lm/oauth/revoke"
VERIFICATION_PATH = "/lm/device"
# How long a person has to confirm the code, and how often lm-cli may ask meanwhile.
DEVICE_CODE_LIFETIME = 600
POLL_INTERVAL = 5
PUBLIC_CLIENT_GRANTS = (DeviceCodeGrant.GRANT_TYPE, "refresh_token")
# The login client authenticates with "none" (it has no secret). HTTP Basic is listed too so that
# an unknown or wrong client gets 401 invalid_client, as at the token endpoint (RFC 6749 5.2);
# confidential clients (clusters) may not use these grants anyway.
PUBLIC_CLIENT_AUTH_METHODS = ["client_secret_basic", "none"]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_user_code(text: str) -> str:
    """What a person types, as stored: capitals, dash after four letters, spaces ignored."""
    letters = "".join(character for character in text.upper() if character.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


def person_scope(person: Person, requested: str | None) -> str:
    """The person's permissions, or those of them the client asked for (never more)."""
    owned = person.permissions.split()
    if not requested:
        return " ".join(owned)
    return " ".join(name for name in requested.split() if name in owned)


class PublicCliClient(ClientMixin):
    """lm-cli (or any client named LM_CLI_CLIENT_ID): public, device and refresh grants only."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in PUBLIC_CLIENT_GRANTS

    def check_response_type(self, response_type: str) -> bool:
        return False


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """Hands out the codes; only lm-cli's public client may ask (no secrets to leak)."""

    CLIENT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS
    EXPIRES_IN = DEVICE_CODE_LIFETIME
    INTERVAL = POLL_INTERVAL

    def __init__(self, server: Any, public_url: str) -> None:
        super().__init__(server)
        self.public_url = public_url

    def authenticate_client(self, request: Any) -> ClientMixin:
        client = super().authenticate_client(request)
        if not client.check_grant_type(DeviceCodeGrant.GRANT_TYPE):
            raise UnauthorizedClientError("this client may not use the device login")
        return client

    def get_verification_uri(self) -> str:
        return f"{self.public_url}{VERIFICATION_PATH}"

    def save_device_credential(self, client_id: str, scope: str | None, data: dict) -> None:
        now = utcnow()
        db.session.execute(delete(DeviceAuthorization).where(DeviceAuthorization.expires_at < now))
        db.session.add(
            DeviceAuthorization(
                device_code_hash=digest(data["device_code"]),
                user_code=data["user_code"],
                client_id=client_id,
                scope=scope or "",
                expires_at=now + timedelta(seconds=data["expires_in"]),
            )
        )
        db.session.commit()


class DeviceGrant(DeviceCodeGrant):
    """lm-cli's polling: pending until the person answers; a device code works once."""

    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS

    def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
        row = db.session.scalars(
            select(DeviceAuthorization).where(
                DeviceAuthorization.device_code_hash == digest(device_code)
            )
        ).first()
        if row is None:
            return None
        self._row = row
        return DeviceCredentialDict(
            client_id=row.client_id,
            scope=row.scope,
            user_code=row.user_code,
            expires_at=row.expires_at.timestamp(),
        )

    def query_user_grant(self, user_code: str) -> tuple[Person, bool] | None:
        row = self._row
        if row.approved is None or row.person_id is None:
            return None
        person = db.session.get(Person, row.person_id)
        if person is None:  # deleted since approving: nobody to issue the token to
            return None
        return person, bool(row.approved)

    def should_slow_down(self, credential: DeviceCredentialDict) -> bool:
        """A client polling faster than the interval is told to slow down (RFC 8628 3.5)."""
        row, now = self._row, utcnow()
        too_soon = row.last_polled_at is not None and now - row.last_polled_at < timedelta(
            seconds=POLL_INTERVAL - 1
        )
        row.last_polled_at = now
        db.session.commit()
        return too_soon

    def create_token_response(self) -> Any:
        """Issue the tokens and forget the codes: a device code is good for one token."""
        result = super().create_token_response()
        db.session.delete(self._row)
        db.session.commit()
        return result


@dataclass
class StoredRefreshToken:
    """Authlib's view of a refresh-token row."""

    row: RefreshToken

    def check_client(self, client: ClientMixin) -> bool:
        return client.get_client_id() == self.row.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return False  # revoked tokens are deleted


def find_refresh_token(token: str) -> StoredRefreshToken | None:
    row = db.session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == digest(token))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return StoredRefreshToken(row)


class RefreshGrant(grants.RefreshTokenGrant):
    """A new access token (and a new refresh token: the old one stops working)."""

    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefreshToken | None:
        return find_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: StoredRefreshToken) -> Person:
        return refresh_token.row.person

    def revoke_old_credential(self, refresh_token: StoredRefreshToken) -> None:
        db.session.delete(refresh_token.row)
        db.session.commit()


class Revocation(RevocationEndpoint):
    """`lm-cli logout` revokes its refresh token; access tokens are JWTs that expire."""

    CLIENT_AUTH_METHODS = PUBLIC_CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_refresh_token(token_string)

    def revoke_token(self, token: StoredRefreshToken, request: Any) -> None:
        db.session.delete(token.row)
        db.session.commit()


def new_refresh_token(client: ClientMixin, grant_type: str, user: Any, scope: str) -> str:
    """A random refresh token; `save_refresh_token` keeps only its hash."""
    return secrets.token_urlsafe(32)


def save_refresh_token(token: dict[str, Any], user: Any, client_id: str, lifetime: int) -> None:
    """Store a person's new refresh token (client_credentials tokens have none)."""
    refresh_token = token.get("refresh_token")
    if not refresh_token or not isinstance(user, Person):
        return
    db.session.add(
        RefreshToken(
            token_hash=digest(refresh_token),
            person_id=user.id,
            client_id=client_id,
            scope=token.get("scope") or "",
            expires_at=utcnow() + timedelta(seconds=lifetime),
        )
    )
    db.session.commit()


@dataclass(frozen=True)
class PendingLogin:
    """A user code waiting for a person's answer on the verification page."""

    user_code: str
    client_id: str


class UserCodeError(ValueError):
    """The user code is unknown, expired or already answered; the message says which."""


def pending_login(user_code: str) -> PendingLogin:
    row = _pending_row(user_code)
    return PendingLogin(row.user_code, row.client_id)


def _pending_row(user_code: str) -> DeviceAuthorization:
    code = normalize_user_code(user_code)
    row = db.session.scalars(
        select(DeviceAuthorization).where(DeviceAuthorization.user_code == code)
    ).first()
    if row is None:
        raise UserCodeError(f"Unknown code {code or '(empty)'}: check what lm-cli printed.")
    if row.expires_at <= utcnow():
        raise UserCodeError(f"Code {code} has expired: run lm-cli login again.")
    if row.approved is not None:
        raise UserCodeError(f"Code {code} was already answered.")
    return row


def answer_login(user_code: str, person: Person, approved: bool) -> None:
    """Record the person's approval (or refusal); lm-cli's next poll gets the answer."""
    row = _pending_row(user_code)
    row.person_id = person.id
    row.approved = approved
    db.session.commit()
