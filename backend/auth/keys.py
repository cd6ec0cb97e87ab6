"""The built-in issuer's RSA signing key: one key per database, shared by every API process."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import select, text

from backend.extensions import AnySession
from backend.models import SigningKey

SIGNING_ALGORITHM = "RS256"
RSA_KEY_BITS = 2048
# Serialises first-start key creation across processes and hosts sharing the database.
_KEY_CREATION_LOCK_ID = zlib.crc32(b"license-manager:signing-key")


class SigningKeyError(RuntimeError):
    """The configured signing key cannot be used."""


def _with_key_id(key: RSAKey) -> RSAKey:
    """Name the key by its RFC 7638 thumbprint so JWKS consumers can pick it by `kid`."""
    key.ensure_kid()
    return key


def load_key_file(path: str) -> RSAKey:
    """Read an RSA private key in PEM (LM_SIGNING_KEY_FILE)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise SigningKeyError(f"cannot read LM_SIGNING_KEY_FILE {path}: {error}") from error
    try:
        key = RSAKey.import_key(pem)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"LM_SIGNING_KEY_FILE {path} is not an RSA key in PEM") from error
    if not key.is_private:
        raise SigningKeyError(f"LM_SIGNING_KEY_FILE {path} holds a public key, not a private one")
    return _with_key_id(key)


def load_or_create_database_key(session: AnySession) -> RSAKey:
    """Return the database's key, creating it on first start.

    A transaction-level advisory lock makes processes that start together wait for the first one,
    so they all read the same row instead of each inserting its own key.
    """
    session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEY_CREATION_LOCK_ID})
    row = session.scalars(select(SigningKey).order_by(SigningKey.id).limit(1)).first()
    if row is None:
        key = _with_key_id(RSAKey.generate_key(RSA_KEY_BITS))
        session.add(SigningKey(kid=key.kid, private_pem=key.as_pem(private=True).decode()))
    else:
        key = _with_key_id(RSAKey.import_key(row.private_pem))
    session.commit()
    return key


def public_jwk(key: RSAKey) -> dict[str, Any]:
    """The key as published in the JWKS: public parts only, with its id, use and algorithm."""
    return {**key.as_dict(private=False), "kid": key.kid, "use": "sig", "alg": SIGNING_ALGORITHM}
