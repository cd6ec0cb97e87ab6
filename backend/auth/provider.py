"""An external OIDC provider's signing keys (LM_OIDC_ISSUER): discovery, JWKS cache, rotation."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import cast

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
# Keys removed at the provider (revoked) stop being trusted after this long at the latest.
JWKS_MAX_AGE = 3600.0


class ProviderUnavailableError(RuntimeError):
    """The provider's discovery document or JWKS cannot be fetched or understood."""


def _fetch_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            document = json.load(response)
    except (OSError, ValueError) as error:
        raise ProviderUnavailableError(f"cannot fetch {url}: {error}") from error
    if not isinstance(document, dict):
        raise ProviderUnavailableError(f"{url} did not answer a JSON object")
    return document


class ProviderKeySource:
    """The provider's JWKS found through its discovery document, cached in this process.

    A token signed with a key we do not know (the provider rotated its keys) refetches the JWKS,
    but at most once per `min_refresh_interval` seconds, so garbage `kid`s cannot hammer it.
    """

    def __init__(self, issuer: str, min_refresh_interval: float) -> None:
        self._discovery_url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        self._min_refresh_interval = min_refresh_interval
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._last_error = ""
        self._lock = threading.Lock()

    def _fetch_keys(self) -> KeySet:
        jwks_uri = _fetch_json(self._discovery_url).get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ProviderUnavailableError(f"{self._discovery_url} names no jwks_uri")
        try:
            # A JWKS document of the wrong shape raises one of the errors below.
            keys = KeySet.import_key_set(cast("KeySetSerialization", _fetch_json(jwks_uri)))
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise ProviderUnavailableError(f"{jwks_uri} is not a usable JWKS: {error}") from error
        log.info("fetched %d signing key(s) from %s", len(keys.keys), jwks_uri)
        return keys

    def _needs_refresh(self, kid: str | None) -> bool:
        age = time.monotonic() - self._fetched_at
        if age >= JWKS_MAX_AGE:
            return True
        if age < self._min_refresh_interval:
            return False
        return self._keys is None or (kid is not None and not self._knows(kid))

    def _knows(self, kid: str) -> bool:
        return self._keys is not None and any(key.kid == kid for key in self._keys.keys)

    def verification_keys(self, kid: str | None) -> KeySet:
        with self._lock:
            if self._needs_refresh(kid):
                self._fetched_at = time.monotonic()
                try:
                    self._keys = self._fetch_keys()
                    self._last_error = ""
                except ProviderUnavailableError as error:
                    log.warning("identity provider keys not refreshed: %s", error)
                    self._last_error = str(error)
            if self._keys is None:
                raise ProviderUnavailableError(self._last_error)
            return self._keys
