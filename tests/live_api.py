"""The one live API of the tests: the production stack (gunicorn serving backend:create_app() with
its built-in issuer on the session's PostgreSQL), shared by the agent's and lm-cli's tests.

Its access log shows which endpoints a client really called (did a prolog fetch a token?). An
in-process app on the same database issues tokens and adds people the way the API's own code does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import text

from agent.api import ApiClient
from agent.config import AgentConfig
from backend import auth
from backend.auth.people import create_person
from backend.extensions import db
from devstack.api import ApiServer
from lm_common.facts import ADMIN_PERMISSION

# What outlives a test: the OAuth clients made for the session and the issuer's signing key.
KEPT_TABLES = {"oauth_clients", "signing_keys", "alembic_version"}


def client_config(
    url: str, client: Mapping[str, str], token_cache_dir: Path, **settings: Any
) -> AgentConfig:
    """Settings of an API client for `client` ({"client_id", "client_secret"})."""
    return AgentConfig(
        api_url=url,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        oidc_issuer=url,
        token_cache_dir=str(token_cache_dir),
        **settings,
    )


@dataclass
class LiveApi:
    """The running API, an admin client for setting up data, and the access log."""

    server: ApiServer
    app: Flask
    access_log: Path
    state_dir: Path
    admin: ApiClient

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def database_url(self) -> str:
        return self.server.database_url

    def requests_seen(self) -> list[str]:
        """`METHOD /path STATUS` of every request served so far, oldest first."""
        if not self.access_log.exists():
            return []
        return [line.strip() for line in self.access_log.read_text().splitlines()]

    def forget_requests(self) -> None:
        self.access_log.write_text("")

    def token(self, *permissions: str, client_id: str = "cluster-a") -> str:
        """A token of the API's own issuer, as the OAuth token endpoint would hand it out."""
        with self.app.app_context():
            return auth.issue_token(client_id, permissions or (ADMIN_PERMISSION,))

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        """A plain HTTP call with a bearer token, for what the client under test does not do."""
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(
            method, f"{self.url}/lm{path}", headers=headers, timeout=10, **kwargs
        )

    def call_form(self, path: str, **form: str) -> requests.Response:
        """A form POST without a token, as an OAuth client sends it (token, revocation)."""
        return requests.post(f"{self.url}/lm{path}", data=form, timeout=10)

    def add_person(self, name: str, password: str) -> str:
        """An admin person, as `lm-backend users create` makes one."""
        with self.app.app_context():
            create_person(db.session, name=name, password=password, permissions=[ADMIN_PERMISSION])
        return name

    def empty(self) -> None:
        """Remove every row a test made: all tables but KEPT_TABLES."""
        with self.app.app_context():
            tables = sorted(set(db.metadata.tables) - KEPT_TABLES)
            db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            db.session.commit()
            db.session.remove()
