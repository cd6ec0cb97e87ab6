"""CLI fixtures: the real API served over HTTP on a free port, and `lm-cli` run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.serving import make_server

from backend import auth, create_app
from backend.auth.people import create_person
from backend.extensions import db, limiter
from backend.settings import Settings
from devstack.postgres import PostgresCluster
from devstack.processes import console_script, free_port

ADMIN = "license-manager:admin"
# What the CLI tests create; the issuer's signing key and OAuth clients outlive a test.
DATA_TABLES = (
    "bookings",
    "jobs",
    "features",
    "license_servers",
    "products",
    "configurations",
    "license_failures",
    "people",
    "device_authorizations",
    "refresh_tokens",
)


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

    def add_person(self, name: str, password: str) -> str:
        """An admin person, as `lm-backend users create` makes one."""
        with self.app.app_context():
            create_person(db.session, name=name, password=password, permissions=[ADMIN])
        return name

    def call_form(self, path: str, **form: str) -> requests.Response:
        """A form POST without a token, as an OAuth client sends it (token, revocation)."""
        return requests.post(f"{self.url}/lm{path}", data=form, timeout=10)


@contextmanager
def served(settings: Settings, port: int) -> Iterator[Flask]:
    """The backend with `settings`, migrated, served by werkzeug in a thread on 127.0.0.1:port."""
    app = create_app(settings)
    with app.app_context():
        upgrade()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_api(postgres: PostgresCluster) -> Iterator[LiveApi]:
    """The backend on its own database, served at 127.0.0.1:<free port>.

    The public URL is the served address, so discovery names a token endpoint lm-cli can reach.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        database_url=postgres.ensure_database("lm_cli_test"), public_url=url
    )
    with served(settings, port) as app:
        yield LiveApi(url, app)


@pytest.fixture
def api(live_api: LiveApi) -> Iterator[LiveApi]:
    """The live API, emptied of resources after the test."""
    yield live_api
    limiter.reset()
    with live_api.app.app_context():
        db.session.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(scope="session")
def admin_client(live_api: LiveApi, postgres: PostgresCluster) -> dict[str, str]:
    """An admin OAuth client made the way an operator makes one: `lm-backend clients create`."""
    env = {
        **os.environ,
        "LM_DATABASE_URL": postgres.url("lm_cli_test"),
        "LM_PUBLIC_URL": live_api.url,
    }
    created = subprocess.run(
        [
            console_script("lm-backend"),
            "clients",
            "create",
            "--name",
            "cli-admin",
            "--permissions",
            ADMIN,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(created.stdout)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


CliRunner = Callable[..., CliResult]


# lm-cli's config directory for tests that give none: no login of the machine's user leaks in.
NO_LOGIN_CONFIG = tempfile.mkdtemp(prefix="lm-cli-test-config-")


def cli_environment(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without LM_* settings, plus `env`."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("LM_")}
    return {**clean_env, "XDG_CONFIG_HOME": NO_LOGIN_CONFIG, **(env or {})}


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """`lm-cli ARGS` in a subprocess with only the LM_* variables given in `env`."""
    completed = subprocess.run(
        [console_script("lm-cli"), *args],
        env=cli_environment(env),
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


def parse_table(lines: list[str]) -> list[dict[str, str]]:
    """An aligned table as one dict per row keyed by the headers (cells hold no double space)."""
    headers = re.split(r"\s{2,}", lines[0])
    return [dict(zip(headers, re.split(r"\s{2,}", line), strict=True)) for line in lines[1:]]


def blocks(result: CliResult) -> list[list[str]]:
    """The blank-line separated parts of lm-cli's output."""
    assert result.returncode == 0, result.stderr
    return [block.splitlines() for block in result.stdout.strip("\n").split("\n\n")]


def table_rows(result: CliResult) -> list[dict[str, str]]:
    """The rows of a `list` command's table."""
    return parse_table(blocks(result)[0])


def footer(result: CliResult) -> str:
    return blocks(result)[-1][-1]


def shown_fields(result: CliResult) -> dict[str, str]:
    """The `LABEL: value` lines a `show` (or create/update) prints first."""
    return dict(re.split(r":\s+", line, maxsplit=1) for line in blocks(result)[0])


def nested_rows(result: CliResult, title: str) -> list[dict[str, str]]:
    """The table a `show` prints under `title:` (e.g. "Features"); [] when it says (none)."""
    for block in blocks(result)[1:]:
        if block[0] == f"{title}:":
            return [] if block[1:] == ["(none)"] else parse_table(block[1:])
    raise AssertionError(f"no {title!r} section in {result.stdout!r}")


def set_up_pool(lm_cli: CliRunner) -> None:
    """Configuration 1 of cluster-a with server licserv:27000 and feature 1 abaqus.abaqus."""
    steps = (
        "configurations create --name abaqus-pool --cluster-client-id cluster-a --grace-time 60"
        " --license-server-type flexlm",
        "license-servers create --config-id 1 --host licserv --port 27000",
        "products create --name abaqus",
        "features create --name abaqus --product-id 1 --config-id 1 --reserved 2",
    )
    for step in steps:
        result = lm_cli(*step.split())
        assert result.returncode == 0, (step, result.stderr)


def report_usage(api: LiveApi, total: int, used: int) -> None:
    """What the cluster's agent does each cycle: PUT the license server's counts."""
    report = [{"product_name": "abaqus", "feature_name": "abaqus", "total": total, "used": used}]
    answer = api.call("PUT", "/features/by_client_id", api.token(), json=report)
    assert answer.status_code == 200, answer.text
