"""CLI fixtures: `lm-cli` run as a subprocess against tests/conftest.py's live API."""

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
from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from backend import create_app
from backend.settings import Settings
from devstack.processes import console_script
from tests.live_api import LiveApi

ADMIN = "license-manager:admin"


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
def admin_client(api_server: LiveApi) -> dict[str, str]:
    """An admin OAuth client made the way an operator makes one: `lm-backend clients create`."""
    env = {
        **os.environ,
        "LM_DATABASE_URL": api_server.database_url,
        "LM_PUBLIC_URL": api_server.url,
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
def lm_cli(live_api: LiveApi) -> CliRunner:
    """Runs lm-cli against the live API as an admin (URL and token from the environment)."""
    admin_env = {"LM_API_URL": live_api.url, "LM_TOKEN": live_api.token()}

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


def report_usage(live_api: LiveApi, total: int, used: int) -> None:
    """What the cluster's agent does each cycle: PUT the license server's counts."""
    report = [{"product_name": "abaqus", "feature_name": "abaqus", "total": total, "used": used}]
    answer = live_api.call("PUT", "/features/by_client_id", live_api.token(), json=report)
    assert answer.status_code == 200, answer.text
