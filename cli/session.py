"""A person's lm-cli session: device login (RFC 8628), the token file, refresh and logout.

`lm-cli login` asks the issuer's `device_authorization_endpoint` for a code, tells the person
where to confirm it in a browser, and polls the token endpoint at the interval the issuer gives.
The tokens are kept in $XDG_CONFIG_HOME/license-manager/tokens.json (mode 0600), for the one API
address they were obtained for: another --url never receives them. Every other command uses the
stored access token, refreshed first when it has expired.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cli.api import CliError, describe_error_response
from lm_common.api import ApiResponse, ApiUnreachable, DiscoveryError, discover, send

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_FILE_NAME = "tokens.json"
# Refresh a little before the token expires, so it does not expire on its way to the API.
EXPIRY_MARGIN = 30
LOGIN_AGAIN = "run lm-cli login"


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/license-manager, ~/.config/license-manager when the variable is unset."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "license-manager"


@dataclass
class Session:
    """What `lm-cli login` stored: the tokens and where to renew or revoke them."""

    api_url: str
    issuer_url: str
    client_id: str
    token_endpoint: str
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    revocation_endpoint: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at - EXPIRY_MARGIN

    def take(self, answer: Mapping[str, Any], now: float) -> None:
        """Keep a token endpoint's answer (a refresh may or may not rotate the refresh token)."""
        self.access_token = answer["access_token"]
        self.refresh_token = answer.get("refresh_token") or self.refresh_token
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int | float):
            self.expires_at = now + expires_in
        else:
            self.expires_at = token_claims(self.access_token).get("exp")


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the API verifies; lm-cli only shows them); {} if opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class TokenFile:
    """The session on disk: written atomically, readable by its owner only."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / TOKEN_FILE_NAME

    def load(self) -> Session | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CliError(f"cannot read the token file {self.path}: {error.strerror}") from None
        try:
            data = json.loads(text)
            known = {field.name for field in fields(Session)}
            session = Session(**{key: value for key, value in data.items() if key in known})
        except (ValueError, TypeError, AttributeError):
            raise CliError(
                f"the token file {self.path} is corrupt: {LOGIN_AGAIN} (or lm-cli logout)"
            ) from None
        if not isinstance(session.access_token, str) or not session.access_token:
            raise CliError(f"the token file {self.path} holds no token: {LOGIN_AGAIN}")
        return session

    def save(self, session: Session) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(descriptor, "w") as handle:  # mkstemp makes it 0600
                json.dump(asdict(session), handle, indent=2)
            os.replace(temporary, self.path)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise CliError(f"cannot write the token file {self.path}: {error.strerror}") from None

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class Issuer:
    """The OAuth endpoints of the built-in issuer or an external OIDC provider, by discovery."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._discovery: dict[str, Any] | None = None

    def unreachable(self, error: ApiUnreachable) -> CliError:
        return CliError(f"cannot reach the identity provider at {self.url}: {error.reason}")

    def endpoint(self, name: str) -> str | None:
        if self._discovery is None:
            try:
                self._discovery = discover(self.url, timeout=self.timeout)
            except ApiUnreachable as error:
                raise self.unreachable(error) from None
            except DiscoveryError as error:
                raise CliError(f"{error}: is --issuer-url (LM_ISSUER_URL) right?") from None
        value = self._discovery.get(name)
        return value if isinstance(value, str) else None

    def post(self, url: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """A form POST to an OAuth endpoint: its status and JSON object (or CliError)."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            answer: ApiResponse = send(
                "POST", url, body=urlencode(form).encode(), headers=headers, timeout=self.timeout
            )
        except ApiUnreachable as error:
            raise self.unreachable(error) from None
        body = answer.body if answer.is_json else None
        if not isinstance(body, dict):
            raise CliError(f"{url} answered {answer.status} without OAuth JSON")
        if answer.status >= 400 and "error" not in body:
            raise CliError(describe_error_response(answer))
        return answer.status, body


def oauth_error(body: Mapping[str, Any]) -> str:
    return ": ".join(str(body[key]) for key in ("error", "error_description") if body.get(key))


@dataclass
class DeviceLogin:
    """One `lm-cli login`: the prompt, then polling until the person answers in the browser."""

    issuer: Issuer
    api_url: str
    client_id: str
    scope: str | None = None
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def run(self) -> Session:
        return self.wait(self.begin())

    def begin(self) -> dict[str, Any]:
        """Ask for the codes and tell the person where to confirm them."""
        device_endpoint = self.issuer.endpoint("device_authorization_endpoint")
        if not device_endpoint or not self.issuer.endpoint("token_endpoint"):
            raise CliError(
                f"the issuer at {self.issuer.url} offers no device login "
                "(its discovery document names no device_authorization_endpoint)"
            )
        form = {"client_id": self.client_id, **({"scope": self.scope} if self.scope else {})}
        status, codes = self.issuer.post(device_endpoint, form)
        if status != 200 or not {"device_code", "user_code", "verification_uri"} <= set(codes):
            raise CliError(f"login refused by {self.issuer.url}: {oauth_error(codes)}")
        self._prompt(codes)
        return codes

    def wait(self, codes: Mapping[str, Any]) -> Session:
        """Poll until the person answered; the session to store."""
        token_endpoint = str(self.issuer.endpoint("token_endpoint"))
        answer = self._poll(token_endpoint, codes)
        session = Session(
            api_url=self.api_url,
            issuer_url=self.issuer.url,
            client_id=self.client_id,
            token_endpoint=token_endpoint,
            access_token="",
            revocation_endpoint=self.issuer.endpoint("revocation_endpoint"),
        )
        session.take(answer, self.clock())
        return session

    def _prompt(self, codes: Mapping[str, Any]) -> None:
        minutes = max(1, int(codes.get("expires_in", 600)) // 60)
        lines = [
            "To log in, open this address in a browser:",
            f"  {codes['verification_uri']}",
            f"and enter the code: {codes['user_code']}",
        ]
        if codes.get("verification_uri_complete"):
            lines.append(f"(or open {codes['verification_uri_complete']})")
        lines.append(f"Waiting for your approval (the code expires in {minutes} min) ...")
        self.say("\n".join(lines))

    def _poll(self, token_endpoint: str, codes: Mapping[str, Any]) -> dict[str, Any]:
        """Ask at the issuer's interval (RFC 8628 3.5) until approved, denied or expired."""
        interval = float(codes.get("interval") or 5)
        deadline = self.clock() + float(codes.get("expires_in") or 600)
        form = {
            "grant_type": DEVICE_GRANT,
            "device_code": str(codes["device_code"]),
            "client_id": self.client_id,
        }
        while self.clock() < deadline:
            self.sleep(interval)
            status, body = self.issuer.post(token_endpoint, form)
            if status == 200 and isinstance(body.get("access_token"), str):
                return body
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if error == "access_denied":
                raise CliError("the login was denied in the browser")
            if error == "expired_token":
                break
            raise CliError(f"login failed: {oauth_error(body) or status}")
        raise CliError(f"the code expired before it was approved: {LOGIN_AGAIN} again")


def refreshed(session: Session, timeout: float, clock: Callable[[], float] = time.time) -> bool:
    """Renew an expired access token with the refresh token. False when it cannot be renewed."""
    if not session.refresh_token:
        return False
    form = {
        "grant_type": "refresh_token",
        "refresh_token": session.refresh_token,
        "client_id": session.client_id,
    }
    status, body = Issuer(session.issuer_url, timeout).post(session.token_endpoint, form)
    if status != 200 or not isinstance(body.get("access_token"), str):
        return False
    session.take(body, clock())
    return True


class StoredLogin:
    """The stored login as the API client's token source: renewed when expired or refused."""

    def __init__(self, store: TokenFile, session: Session, timeout: float) -> None:
        self.store = store
        self.session = session
        self.timeout = timeout
        self._renewed = False

    @classmethod
    def of(cls, store: TokenFile, api_url: str | None, timeout: float) -> StoredLogin | None:
        """The login of this API (any, when None); None when not logged in to it: a token is
        never sent to another API than the one it was obtained for."""
        session = store.load()
        if session is None:
            return None
        if api_url and session.api_url.rstrip("/") != api_url.rstrip("/"):
            return None
        return cls(store, session, timeout)

    def token(self) -> str:
        if self.session.expired(time.time()) and self.renew() is None:
            raise CliError(f"your login session has expired: {LOGIN_AGAIN}")
        return self.session.access_token

    def renew(self) -> str | None:
        """A refreshed token (once per run), saved for the next command; None when impossible."""
        if self._renewed or not refreshed(self.session, self.timeout):
            return None
        self._renewed = True
        self.store.save(self.session)
        return self.session.access_token


def logout(store: TokenFile, timeout: float) -> str:
    """Revoke the refresh token where the issuer supports it, then delete the token file."""
    try:
        session = store.load()
    except CliError:
        session = None  # a corrupt file is still removed
    notes = []
    if session and session.refresh_token and session.revocation_endpoint:
        form = {
            "token": session.refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": session.client_id,
        }
        try:
            status, body = Issuer(session.issuer_url, timeout).post(
                session.revocation_endpoint, form
            )
        except CliError as error:
            status, body = 0, {"error": str(error)}
        if status != 200:
            notes.append(f" (the issuer did not revoke the refresh token: {oauth_error(body)})")
    if not store.delete():
        return f"not logged in (no {store.path})"
    return f"logged out: removed {store.path}" + "".join(notes)
