"""How the token endpoint authenticates a client: the same cost and answer for every failure.

- Credentials are read from HTTP Basic (client_secret_basic) or the form (client_secret_post);
  bytes that are not UTF-8, NUL characters and over-long values are a failed authentication
  (401 invalid_client), never an error of the server.
- Before the secret is checked, the attempt is counted per client id and per remote address
  (backend.auth.throttle); past the limit the answer is 429 with Retry-After and no check runs,
  so nobody can make the API burn scrypt checks at full speed.
- An unknown client id is checked against a decoy hash: it costs what a wrong secret costs and
  gets the same answer, so client ids cannot be enumerated.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import current_app

from backend.auth.clients import CLIENT_ID_PATTERN, find_client, hash_secret, verify_secret
from backend.auth.throttle import give_back, take_attempt
from backend.extensions import db
from backend.models import OAuthClient

# Secrets we hand out are 43 characters; anything much longer is not one of ours.
MAX_SECRET_LENGTH = 256


class TooManyAttempts(OAuth2Error):
    """429: too many failed token requests for this client id or from this address."""

    error = "slow_down"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            description=f"too many failed attempts: retry in {retry_after} seconds",
            status_code=429,
        )
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


@functools.cache
def _decoy_hash() -> str:
    """A hash no secret matches, checked for unknown client ids (made once per process)."""
    return hash_secret(secrets.token_urlsafe(32))


def _readable(value: str) -> bool:
    return bool(value) and "\x00" not in value and len(value) <= MAX_SECRET_LENGTH


def authenticate(
    client_id: str | None, secret: str | None, remote_address: str | None
) -> OAuthClient | None:
    """The stored client these credentials prove, or None; TooManyAttempts past the limit."""
    if client_id is None or secret is None or not _readable(client_id) or not _readable(secret):
        return None
    settings = current_app.config["LM_SETTINGS"]
    attempt = take_attempt(
        db.session,
        client_id,
        remote_address,
        limit=settings.token_failure_limit,
        window=settings.token_failure_window,
    )
    if attempt.retry_after:
        raise TooManyAttempts(attempt.retry_after)
    # The lookup runs for every id (a malformed one looks up nothing) so that both paths cost
    # the same; a malformed id could not be stored anyway.
    row: OAuthClient | None = find_client(
        db.session, client_id if CLIENT_ID_PATTERN.match(client_id) else ""
    )
    matches = verify_secret(secret, row.secret_hash if row else _decoy_hash())
    if row is None or not matches:
        return None
    give_back(db.session, attempt)
    return row


def basic_credentials(request: Any) -> tuple[str | None, str | None]:
    """client_secret_basic's id and secret (RFC 6749 2.3.1: form-encoded, then Basic)."""
    scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None, None
    try:
        return unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except UnicodeDecodeError:
        return None, None


def form_credentials(request: Any) -> tuple[str | None, str | None]:
    """client_secret_post's id and secret from the form body."""
    return request.form.get("client_id"), request.form.get("client_secret")
