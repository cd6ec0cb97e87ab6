"""Reaching the API: health, credentials, and what the admin sees when something is wrong."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devstack.processes import free_port
from tests.cli.conftest import CliRunner, run_cli
from tests.live_api import LiveApi


def test_health_answers_without_a_token(live_api: LiveApi):
    result = run_cli("health", env={"LM_API_URL": live_api.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "status: ok, database: ok"


def test_health_json_is_the_api_answer(live_api: LiveApi):
    result = run_cli("--json", "health", env={"LM_API_URL": live_api.url})
    assert result.json() == {"status": "ok", "database": "ok"}


def test_unreachable_api_is_one_clear_line():
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("products", "list", env={"LM_API_URL": url})
    assert result.returncode == 1
    assert result.stderr == f"lm-cli: error: cannot reach the API at {url}: Connection refused\n"


def test_api_that_never_answers_times_out():
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run_cli("--timeout", "1", "products", "list", env={"LM_API_URL": url})
    assert result.returncode == 1
    assert result.stderr == f"lm-cli: error: cannot reach the API at {url}: no answer in time\n"


@pytest.fixture
def plain_web_server(tmp_path: Path) -> Iterator[str]:
    """Some other web server (not our API) that serves files, as a mistyped --url would reach."""
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "health").write_text("<html>It works!</html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_the_api_is_named(plain_web_server: str):
    env = {"LM_API_URL": plain_web_server, "LM_TOKEN": "t"}
    answered = run_cli("health", env=env)
    assert answered.returncode == 1
    assert answered.stderr == (
        f"lm-cli: error: {plain_web_server}/lm/health answered 200 without the expected JSON: "
        "is --url the License Manager API?\n"
    )
    missing = run_cli("products", "list", env=env)
    assert missing.returncode == 1
    assert missing.stderr == (f"lm-cli: error: 404 Not Found from {plain_web_server}/lm/products\n")


def test_missing_token_gets_the_401_and_a_hint(live_api: LiveApi):
    result = run_cli("products", "list", env={"LM_API_URL": live_api.url})
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 401 Unauthorized")
    assert "give --token, or --client-id and --client-secret" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_invalid_token_is_refused_with_the_api_reason(lm_cli: CliRunner):
    result = lm_cli("products", "list", LM_TOKEN="not-a-jwt")
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 401 Unauthorized: ")
    assert "hint" not in result.stderr and "give --token" not in result.stderr


def test_missing_permission_is_a_403_line(live_api: LiveApi, lm_cli: CliRunner):
    reader = live_api.token("license-manager:product:read")
    result = lm_cli("products", "create", "--name", "abaqus", LM_TOKEN=reader)
    assert result.returncode == 1
    assert "403" in result.stderr
    assert "missing permission license-manager:product:create" in result.stderr


def test_client_credentials_are_traded_for_a_token(live_api: LiveApi, admin_client: dict[str, str]):
    credentials = {
        "LM_API_URL": live_api.url,
        "LM_CLIENT_ID": admin_client["client_id"],
        "LM_CLIENT_SECRET": admin_client["client_secret"],
    }
    created = run_cli("products", "create", "--name", "abaqus", "--json", env=credentials)
    assert created.returncode == 0, created.stderr
    assert created.json()["name"] == "abaqus"


def test_wrong_client_secret_is_one_clear_line(live_api: LiveApi, admin_client: dict[str, str]):
    result = run_cli(
        "products",
        "list",
        "--client-id",
        admin_client["client_id"],
        "--client-secret",
        "wrong",
        env={"LM_API_URL": live_api.url},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: token request refused: 401 Unauthorized: ")
    assert "invalid_client" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_issuer_without_discovery_document_is_reported(live_api: LiveApi):
    result = run_cli(
        "products",
        "list",
        "--issuer-url",
        f"{live_api.url}/nowhere",
        env={"LM_API_URL": live_api.url, "LM_CLIENT_ID": "x", "LM_CLIENT_SECRET": "y"},
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"lm-cli: error: no OpenID discovery document at {live_api.url}/nowhere: 404\n"
    )
