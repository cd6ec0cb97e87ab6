"""OAuth clients of the built-in issuer (cluster agents, admins): creation and secret checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from backend.auth.permissions import Identity, validate_permission_names
from backend.extensions import AnySession
from backend.models import OAuthClient

# scrypt cost: ~50 ms per check, paid once per token request (agents cache their tokens).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SALT_BYTES = 16
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ClientError(ValueError):
    """A client cannot be created or found as asked; the message says why."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def hash_secret(secret: str) -> str:
    """Salted scrypt hash, stored as scrypt$n$r$p$salt$hash so the cost can change later."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    parts = ("scrypt", _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _b64(salt), _b64(digest))
    return "$".join(str(part) for part in parts)


def verify_secret(secret: str, stored: str) -> bool:
    """Compare a presented secret with a stored hash in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class NewClient:
    """A freshly created client: the only moment its secret is known in clear."""

    client_id: str
    client_secret: str


def create_client(
    session: AnySession, *, name: str, permissions: list[str], client_id: str | None = None
) -> NewClient:
    """Store a client with a random secret; the client id defaults to the name."""
    client_id = client_id or name
    if not CLIENT_ID_PATTERN.match(client_id):
        raise ClientError(
            f"client id {client_id!r} must be 1-64 letters, digits, '.', '_' or '-' "
            "(pass --client-id when the name does not fit)"
        )
    granted = validate_permission_names(permissions)
    if not granted:
        raise ClientError("a client needs at least one permission")
    if find_client(session, client_id) is not None:
        raise ClientError(f"client {client_id!r} already exists")
    secret = secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            client_id=client_id,
            name=name,
            secret_hash=hash_secret(secret),
            permissions=" ".join(granted),
        )
    )
    session.commit()
    return NewClient(client_id=client_id, client_secret=secret)


def find_client(session: AnySession, client_id: str) -> OAuthClient | None:
    return session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()


def list_clients(session: AnySession) -> list[OAuthClient]:
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.client_id)))


def delete_client(session: AnySession, client_id: str) -> None:
    client = find_client(session, client_id)
    if client is None:
        raise ClientError(f"no client {client_id!r}")
    session.delete(client)
    session.commit()


class ClientLiveness:
    """Whether the stored client a built-in token names still exists, asked of the database at
    most once per `recheck` seconds per client and process (LM_CLIENT_RECHECK): a deleted
    client's tokens stop being accepted within that time, not only at their expiry."""

    def __init__(self, session: AnySession, recheck: float) -> None:
        self._session = session
        self._recheck = recheck
        self._checked: dict[tuple[int, str], tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, identity: Identity) -> bool:
        assert identity.client_ref is not None
        key = (identity.client_ref, identity.client_id)
        now = time.monotonic()
        with self._lock:
            cached = self._checked.get(key)
        if cached is not None and now - cached[1] < self._recheck:
            return cached[0]
        exists = (
            self._session.scalar(
                select(OAuthClient.id).where(
                    OAuthClient.id == identity.client_ref,
                    OAuthClient.client_id == identity.client_id,
                )
            )
            is not None
        )
        with self._lock:
            self._checked[key] = (exists, now)
        return exists
