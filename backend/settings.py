"""Backend settings, read from LM_* environment variables (documented in README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from lm_common.facts import DEFAULT_CLI_CLIENT_ID


class SettingsError(ValueError):
    """A setting has a value the backend cannot use."""


def _int_env(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


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
    """Everything the API process needs to know about its deployment."""

    database_url: str
    public_url: str
    oidc_issuer: str | None
    oidc_audience: str | None
    signing_key_file: str | None
    token_lifetime: int
    oidc_jwks_min_refresh: int
    report_fresh_intervals: int
    log_level: str
    trusted_proxies: int
    cli_client_id: str
    refresh_token_lifetime: int
    login_rate_limit: str

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": os.environ.get(
                "LM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5433/license_manager"
            ),
            "public_url": os.environ.get("LM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            "oidc_issuer": os.environ.get("LM_OIDC_ISSUER") or None,
            "oidc_audience": os.environ.get("LM_OIDC_AUDIENCE") or None,
            "signing_key_file": os.environ.get("LM_SIGNING_KEY_FILE") or None,
            "token_lifetime": _int_env("LM_TOKEN_LIFETIME", 3600, minimum=60),
            "oidc_jwks_min_refresh": _int_env("LM_OIDC_JWKS_MIN_REFRESH", 60),
            "report_fresh_intervals": _int_env("LM_REPORT_FRESH_INTERVALS", 3, minimum=1),
            "log_level": os.environ.get("LM_LOG_LEVEL", "INFO").upper(),
            "trusted_proxies": _int_env("LM_TRUSTED_PROXIES", 0),
            "cli_client_id": os.environ.get("LM_CLI_CLIENT_ID") or DEFAULT_CLI_CLIENT_ID,
            "refresh_token_lifetime": _int_env(
                "LM_REFRESH_TOKEN_LIFETIME", 14 * 24 * 3600, minimum=60
            ),
            "login_rate_limit": os.environ.get("LM_LOGIN_RATE_LIMIT") or "10 per minute",
        }
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
