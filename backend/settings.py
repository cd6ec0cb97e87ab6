"""Backend settings, read from LM_* environment variables.

Each variable is declared once, as a field of Settings made by `env(VARIABLE, kind, default,
description)`: adding a setting is adding such a field. tests/test_settings.py checks the README's
table and the license_manager_backend role against these declarations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lm_common.facts import DEFAULT_CLI_CLIENT_ID


class SettingsError(ValueError):
    """A setting has a value the backend cannot use."""


@dataclass(frozen=True)
class EnvSetting:
    """How one LM_* variable is read: its kind, default, bounds and purpose.

    Kinds: `text` (unset or empty: the default), `url` (the same, without a trailing slash),
    `optional` (unset or empty: None), `int` (a whole number >= `minimum`), `level` (upper-cased),
    `bool` (true/false, yes/no, on/off, 1/0).
    """

    variable: str
    kind: str
    default: object
    description: str
    minimum: int = 0

    def read(self, environ: Mapping[str, str]) -> object:
        return _READERS[self.kind](self, environ.get(self.variable))


def env(variable: str, kind: str, default: object, description: str, minimum: int = 0) -> Any:
    """A Settings field read from the environment variable `variable`."""
    if kind not in _READERS:
        raise TypeError(f"unknown setting kind {kind!r} (known: {', '.join(_READERS)})")
    return field(metadata={"env": EnvSetting(variable, kind, default, description, minimum)})


def _text(setting: EnvSetting, raw: str | None) -> object:
    return raw or setting.default


def _url(setting: EnvSetting, raw: str | None) -> object:
    return str(_text(setting, raw)).rstrip("/")


def _optional(setting: EnvSetting, raw: str | None) -> object:
    return raw or None


def _int(setting: EnvSetting, raw: str | None) -> object:
    if raw is None or raw == "":
        return setting.default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{setting.variable} must be an integer, got {raw!r}") from None
    if value < setting.minimum:
        raise SettingsError(f"{setting.variable} must be >= {setting.minimum}, got {value}")
    return value


def _level(setting: EnvSetting, raw: str | None) -> object:
    return str(_text(setting, raw)).upper()


def _bool(setting: EnvSetting, raw: str | None) -> object:
    word = (raw or "").strip().lower()
    if not word:
        return setting.default
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{setting.variable} must be true or false, got {raw!r}")


_READERS: dict[str, Callable[[EnvSetting, str | None], object]] = {
    "text": _text,
    "url": _url,
    "optional": _optional,
    "int": _int,
    "level": _level,
    "bool": _bool,
}


def sqlalchemy_url(url: str) -> str:
    """Name the driver we ship, psycopg 3, whatever form the admin wrote the URL in.

    psycopg 3 prepares statements that a connection runs repeatedly on the server: booking
    admission's pool queries then skip PostgreSQL's planner (about 2 ms of its CPU per job).
    libpq's multi-host form (`postgresql://user@db1:5432,db2:5432/name?target_session_attrs=
    read-write`, how replicated databases are reached) is moved into libpq's own `host` and
    `port` parameters: SQLAlchemy's URL parser takes one host only.
    """
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + _hosts_as_parameters(url[len(scheme) :])
    return url


def _hosts_as_parameters(rest: str) -> str:
    """`user@a:1,b:2/db?x=y` -> `user@/db?host=a,b&port=1,2&x=y`; one host: unchanged."""
    authority, slash, tail = rest.partition("/")
    if not slash:  # no database path: the query may follow the hosts directly
        authority, question, query = authority.partition("?")
        tail = question + query
    userinfo, at, hostlist = authority.rpartition("@")
    if "," not in hostlist:
        return rest
    hosts, ports = [], []
    for entry in hostlist.split(","):
        if entry.startswith("["):  # [IPv6]:port
            host, _, port = entry[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = entry.partition(":")
        hosts.append(host)
        ports.append(port)
    path, question, query = tail.partition("?")
    parameters = [f"host={','.join(hosts)}"]
    if any(ports):
        parameters.append(f"port={','.join(ports)}")
    if query:
        parameters.append(query)
    return f"{userinfo}{at}/{path}?{'&'.join(parameters)}"


@dataclass(frozen=True)
class Settings:
    """Everything the API process needs to know about its deployment (the README's table)."""

    database_url: str = env(
        "LM_DATABASE_URL",
        "text",
        "postgresql://postgres@127.0.0.1:5433/license_manager",
        "PostgreSQL database",
    )
    public_url: str = env(
        "LM_PUBLIC_URL",
        "url",
        "http://127.0.0.1:8000",
        "the API's public address; the built-in issuer's `iss`",
    )
    oidc_issuer: str | None = env(
        "LM_OIDC_ISSUER",
        "optional",
        None,
        "an external OIDC provider (Keycloak, ...) whose tokens the API accepts",
    )
    oidc_audience: str | None = env(
        "LM_OIDC_AUDIENCE", "optional", None, "the `aud` tokens must carry, when set"
    )
    signing_key_file: str | None = env(
        "LM_SIGNING_KEY_FILE", "optional", None, "PEM file with the built-in issuer's private key"
    )
    token_lifetime: int = env(
        "LM_TOKEN_LIFETIME", "int", 3600, "seconds a built-in token is valid", minimum=60
    )
    oidc_jwks_min_refresh: int = env(
        "LM_OIDC_JWKS_MIN_REFRESH",
        "int",
        60,
        "seconds between refetches of the provider's keys for unknown `kid`s",
    )
    report_fresh_intervals: int = env(
        "LM_REPORT_FRESH_INTERVALS",
        "int",
        3,
        "a feature's usage report is fresh for this many reconcile intervals of the agent that "
        "sent it",
        minimum=1,
    )
    log_level: str = env("LM_LOG_LEVEL", "level", "INFO", "log level")
    trusted_proxies: int = env(
        "LM_TRUSTED_PROXIES",
        "int",
        0,
        "reverse proxies in front of the API whose `X-Forwarded-*` headers are trusted",
    )
    cli_client_id: str = env(
        "LM_CLI_CLIENT_ID",
        "text",
        DEFAULT_CLI_CLIENT_ID,
        "the client people log in with: its tokens are people's, never a cluster's",
    )
    refresh_token_lifetime: int = env(
        "LM_REFRESH_TOKEN_LIFETIME",
        "int",
        14 * 24 * 3600,
        "seconds a person's refresh token (lm-cli login) stays valid",
        minimum=60,
    )
    login_rate_limit: str = env(
        "LM_LOGIN_RATE_LIMIT",
        "text",
        "10 per minute",
        "login attempts and device codes per client address and API process",
    )
    history_raw_days: int = env(
        "LM_HISTORY_RAW_DAYS",
        "int",
        14,
        "days every usage sample is kept raw (`lm-backend history prune`, docs/operations.md)",
        minimum=1,
    )
    history_hourly_days: int = env(
        "LM_HISTORY_HOURLY_DAYS",
        "int",
        730,
        "days the hourly min/mean/max rollups (and refusals) are kept",
        minimum=1,
    )
    metrics_open: bool = env(
        "LM_METRICS_OPEN",
        "bool",
        False,
        "`true`: `/lm/metrics` answers without a token; otherwise it needs "
        "`license-manager:metrics:read`",
    )
    max_body_bytes: int = env(
        "LM_MAX_BODY_BYTES",
        "int",
        256 * 1024,
        "largest request body accepted; longer ones answer 413 before they are read",
        minimum=1024,
    )
    token_failure_limit: int = env(
        "LM_TOKEN_FAILURE_LIMIT",
        "int",
        10,
        "failed token requests allowed per client id and per remote address in a window "
        "(429 beyond)",
        minimum=1,
    )
    token_failure_window: int = env(
        "LM_TOKEN_FAILURE_WINDOW", "int", 60, "seconds of that window", minimum=1
    )
    client_recheck: int = env(
        "LM_CLIENT_RECHECK",
        "int",
        60,
        "seconds within which a deleted OAuth client's tokens stop being accepted",
        minimum=1,
    )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Every setting from os.environ (or its default); `overrides` win (tests)."""
        declared = environment()
        unknown = set(overrides) - set(declared)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            name: setting.read(os.environ) for name, setting in declared.items()
        }
        values.update(overrides)
        return cls(**values)


def environment() -> dict[str, EnvSetting]:
    """Every Settings field and the environment variable it is read from, in order."""
    return {spec.name: spec.metadata["env"] for spec in fields(Settings)}
