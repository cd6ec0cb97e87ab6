"""CLI fixtures: the real API served over HTTP on a free port, and `lm-cli` run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.serving import make_server

from backend import auth, create_app
from backend.extensions import db
from backend.settings import Settings
from devstack.postgres import PostgresCluster
from tests.conftest import free_port

ADMIN = "license-manager:admin"
# What the CLI tests create; the issuer's signing key and OAuth clients outlive a test.
DATA_TABLES = ("bookings", "jobs", "features", "license_servers", "products", "configurations")


@dataclass(frozen=True)
class LiveApi:
    url: str
    app: Flask

    def token(self, *permissions: str, client_id: str = "cluster-a") -> str:
        """A token of the API's own issuer, as the OAuth token endpoint would hand it out."""
        with self.app.app_context():
            return auth.issue_token(client_id, permissions or (ADMIN,))

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        """A plain HTTP call for what lm-cli does not do itself (an agent posting a job)."""
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(
            method, f"{self.url}/lm{path}", headers=headers, timeout=10, **kwargs
        )


@pytest.fixture(scope="session")
def live_api(postgres: PostgresCluster) -> Iterator[LiveApi]:
    """The backend on its own database, served by werkzeug in a thread at 127.0.0.1:<free port>.

    The public URL is the served address, so discovery names a token endpoint lm-cli can reach.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        database_url=postgres.ensure_database("lm_cli_test"), public_url=url
    )
    app = create_app(settings)
    with app.app_context():
        upgrade()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveApi(url, app)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def api(live_api: LiveApi) -> Iterator[LiveApi]:
    """The live API, emptied of resources after the test."""
    yield live_api
    with live_api.app.app_context():
        db.session.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
        db.session.commit()


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


CliRunner = Callable[..., CliResult]


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """`lm-cli ARGS` in a subprocess with only the LM_* variables given in `env`."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("LM_")}
    completed = subprocess.run(
        ["lm-cli", *args],
        env={**clean_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def lm_cli(api: LiveApi) -> CliRunner:
    """Runs lm-cli against the live API as an admin (URL and token from the environment)."""
    admin_env = {"LM_API_URL": api.url, "LM_TOKEN": api.token()}

    def run(*args: str, **extra_env: str) -> CliResult:
        return run_cli(*args, env={**admin_env, **extra_env})

    return run
