"""Issuing and validating bearer JWTs (joserfc, the JOSE library Authlib now delegates to)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import GuestProtocol, KeySet, RSAKey

from backend.auth.keys import SIGNING_ALGORITHM, public_jwk
from backend.auth.permissions import CLIENT_REF_CLAIM, Identity

# Asymmetric algorithms only: "none" and HMAC (which could be forged with a public key) never pass.
ACCEPTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class InvalidTokenError(Exception):
    """The bearer token cannot be trusted; the message says why (sent back with the 401)."""


class KeySource(Protocol):
    """Where the public keys that verify tokens come from (built-in key or a provider's JWKS)."""

    def verification_keys(self, kid: str | None) -> KeySet:
        """Keys that may have signed a token with this `kid`."""
        ...


class BuiltinKeySource:
    """The built-in issuer's one key, loaded once per process on first use."""

    def __init__(self, load_key: Callable[[], RSAKey]) -> None:
        self._load_key = load_key
        self._key: RSAKey | None = None
        self._key_set: KeySet | None = None
        self._lock = threading.Lock()

    def signing_key(self) -> RSAKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    key = self._load_key()
                    self._key_set = KeySet([RSAKey.import_key(public_jwk(key))])
                    self._key = key
        return self._key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self.signing_key())]}

    def verification_keys(self, kid: str | None) -> KeySet:
        self.signing_key()
        assert self._key_set is not None
        return self._key_set


class BuiltinIssuer:
    """Signs this backend's own tokens: issuer LM_PUBLIC_URL, key shared through the database."""

    def __init__(self, keys: BuiltinKeySource, *, issuer: str, audience: str | None, lifetime: int):
        self.keys = keys
        self.issuer = issuer
        self._audience = audience
        self.lifetime = lifetime

    def issue(
        self,
        client_id: str,
        permissions: Iterable[str],
        lifetime: int | None = None,
        client_row_id: int | None = None,
    ) -> str:
        """A JWT for `client_id` carrying its permissions both as a list and as an OAuth scope.

        `client_row_id` (the token endpoint's stored client) ties the token to that client:
        it stops being accepted when the client is deleted (CLIENT_REF_CLAIM).
        """
        return self._sign(client_id, client_id, permissions, lifetime, client_row_id)

    def issue_for_person(self, name: str, client_id: str, permissions: Iterable[str]) -> str:
        """A person's JWT: `sub` names them, `client_id` the (public) client they logged in with.

        The API treats tokens of the login client (LM_CLI_CLIENT_ID) as people's, not clusters'.
        """
        return self._sign(name, client_id, permissions, None, None)

    def _sign(
        self,
        subject: str,
        client_id: str,
        permissions: Iterable[str],
        lifetime: int | None,
        client_row_id: int | None,
    ) -> str:
        now = int(time.time())
        granted = list(dict.fromkeys(permissions))
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": subject,
            "client_id": client_id,
            "iat": now,
            "exp": now + (lifetime or self.lifetime),
            "permissions": granted,
            "scope": " ".join(granted),
        }
        if client_row_id is not None:
            claims[CLIENT_REF_CLAIM] = client_row_id
        if self._audience:
            claims["aud"] = self._audience
        key = self.keys.signing_key()
        header = {"alg": SIGNING_ALGORITHM, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[SIGNING_ALGORITHM])


# Tokens already verified, per process: agents reuse one token for an hour, so most requests
# carry a token seen before. Bounded; emptied when full (cheap, and entries are cheap to redo).
VERIFIED_CACHE_SIZE = 4096


class TokenVerifier:
    """Checks signature, algorithm, expiry, issuer and (when configured) audience of a token."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str | None,
        login_clients: frozenset[str] = frozenset(),
        client_exists: Callable[[Identity], bool] | None = None,
    ) -> None:
        self._keys = keys
        self._client_exists = client_exists
        self._issuer = issuer
        self._login_clients = login_clients
        self._verified: dict[str, tuple[Identity, float]] = {}
        options: dict[str, jwt.ClaimsOption] = {
            "iss": {"essential": True, "value": issuer},
            "exp": {"essential": True},
        }
        if audience:
            options["aud"] = {"essential": True, "value": audience}
        # mypy cannot tell that no claim is named like the `now` parameter.
        self._claims_registry = jwt.JWTClaimsRegistry(leeway=30, **options)  # type: ignore[arg-type]

    def _resolve_key(self, token: GuestProtocol) -> KeySet:
        return self._keys.verification_keys(token.headers().get("kid"))

    def verify(self, token: str) -> Identity:
        """Return the caller described by a valid token; raise InvalidTokenError otherwise.

        A token verified before is answered from memory until its `exp`: its bytes are signed,
        so checking them again could only give the same answer (past `exp`, the full check
        runs again and refuses it). This saves ~0.4 ms of CPU on every request. Whether its
        client still exists is asked every time (`client_exists` caches that answer itself).
        """
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            identity = cached[0]
        else:
            identity, expires_at = self._verify_fully(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = (identity, expires_at)
        client_exists = self._client_exists
        if identity.client_ref is not None and client_exists and not client_exists(identity):
            raise InvalidTokenError("token revoked: its client was deleted")
        return identity

    def _verify_fully(self, token: str) -> tuple[Identity, float]:
        try:
            decoded = jwt.decode(token, self._resolve_key, algorithms=ACCEPTED_ALGORITHMS)
        except JoseError as error:
            reason = error.description or error.error.replace("_", " ")
            raise InvalidTokenError(f"invalid token: {reason}") from None
        except (ValueError, KeyError):  # joserfc's way of saying the header or key does not fit
            raise InvalidTokenError("invalid token: malformed header or unusable key") from None
        try:
            self._claims_registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise InvalidTokenError("token expired") from None
        except MissingClaimError as error:
            raise InvalidTokenError(f"token lacks the {error.claim!r} claim") from None
        except JoseError as error:
            claim = getattr(error, "claim", "")
            raise InvalidTokenError(f"token has an invalid {claim!r} claim") from None
        identity = Identity.from_claims(decoded.claims, self._login_clients)
        if not identity.client_id and not identity.person:
            raise InvalidTokenError("token names no client (client_id or azp claim)")
        return identity, float(decoded.claims["exp"])
