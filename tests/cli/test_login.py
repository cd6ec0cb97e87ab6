"""`lm-cli login`, `show-token` and `logout` against the built-in issuer, and what goes wrong."""

from __future__ import annotations

import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from backend.extensions import db
from backend.models import DeviceAuthorization
from cli.session import DeviceLogin, Issuer
from devstack.login import answer_device_login
from devstack.processes import free_port
from tests.cli.conftest import ADMIN, run_cli, set_up_pool, table_rows
from tests.cli.login import LoginProcess
from tests.live_api import LiveApi

PASSWORD = "alice's password"


@pytest.fixture
def alice(live_api: LiveApi) -> str:
    return live_api.add_person("alice", PASSWORD)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A person's environment: their own config directory, the API's address, no secrets."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def token_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "license-manager" / "tokens.json"


def log_in(live_api: LiveApi, env: dict[str, str], **answer: str) -> LoginProcess:
    login = LoginProcess.start("--url", live_api.url, env=env)
    status, page = answer_device_login(
        login.verification_uri, login.user_code, "alice", PASSWORD, **answer
    )
    assert status == 200, page
    return login


@pytest.mark.usefixtures("alice")
def test_login_stores_the_persons_tokens_and_commands_use_them(live_api: LiveApi, home):
    login = LoginProcess.start("--url", live_api.url, env=home)
    assert login.verification_uri == f"{live_api.url}/lm/device"
    assert login.complete_uri == f"{live_api.url}/lm/device?user_code={login.user_code}"
    status, page = answer_device_login(
        login.verification_uri, login.user_code, "alice", "wrong password"
    )
    assert status == 401 and "Wrong name or password." in page
    assert login.process.poll() is None  # still waiting: the person may try again
    answer_device_login(login.verification_uri, login.user_code, "alice", PASSWORD)
    result = login.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"Logged in as alice to {live_api.url}; token stored in {token_file(home)}"
    )
    assert stat.S_IMODE(token_file(home).stat().st_mode) == 0o600
    stored = json.loads(token_file(home).read_text())
    assert stored["refresh_token"] and stored["api_url"] == live_api.url

    env = {**home, "LM_API_URL": live_api.url}
    set_up_pool(lambda *args: run_cli(*args, env=env))
    [row] = table_rows(run_cli("configurations", "list", env=env))
    assert row["NAME"] == "abaqus-pool"
    assert run_cli("show-token", env=env).stdout.strip() == stored["access_token"]
    claims = json.loads(run_cli("show-token", "--decode", env=home).stdout)
    assert (claims["sub"], claims["client_id"], claims["permissions"]) == (
        "alice",
        "lm-cli",
        [ADMIN],
    )

    logged_out = run_cli("logout", env=home)
    assert logged_out.returncode == 0
    assert logged_out.stdout.strip() == f"logged out: removed {token_file(home)}"
    assert not token_file(home).exists()
    after = run_cli("configurations", "list", env=env)
    assert after.returncode == 1 and "run lm-cli login" in after.stderr
    # The refresh token was revoked: a copy kept elsewhere no longer renews the session.
    renewed = live_api.call_form(
        "/oauth/token",
        grant_type="refresh_token",
        refresh_token=stored["refresh_token"],
        client_id="lm-cli",
    )
    assert renewed.json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("alice")
def test_an_expired_access_token_is_refreshed_first(live_api: LiveApi, home):
    assert log_in(live_api, home).wait().returncode == 0
    stored = json.loads(token_file(home).read_text())
    token_file(home).write_text(json.dumps({**stored, "expires_at": time.time() - 60}))
    shown = run_cli("show-token", env=home)
    assert shown.returncode == 0, shown.stderr
    renewed = json.loads(token_file(home).read_text())
    assert renewed["refresh_token"] != stored["refresh_token"]  # rotated
    assert renewed["expires_at"] > time.time() + 600
    assert shown.stdout.strip() == renewed["access_token"]


@pytest.mark.usefixtures("alice")
def test_denied_login_is_one_line(live_api: LiveApi, home):
    result = log_in(live_api, home, decision="deny").wait()
    assert result.returncode == 1
    assert result.stderr == "lm-cli: error: the login was denied in the browser\n"
    assert not token_file(home).exists()


@pytest.mark.usefixtures("alice")
def test_expired_code_is_one_line(live_api: LiveApi, home):
    login = LoginProcess.start("--url", live_api.url, env=home)
    with live_api.app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.session.execute(update(DeviceAuthorization).values(expires_at=past))
        db.session.commit()
    status, page = answer_device_login(login.verification_uri, login.user_code, "alice", PASSWORD)
    assert status == 400 and "has expired: run lm-cli login again" in page
    result = login.wait()
    assert result.returncode == 1
    assert result.stderr == (
        "lm-cli: error: the code expired before it was approved: run lm-cli login again\n"
    )


def test_unreachable_provider_is_one_line(home):
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("--url", url, "login", env=home)
    assert result.returncode == 1
    assert result.stderr == (
        f"lm-cli: error: cannot reach the identity provider at {url}: Connection refused\n"
    )


def test_corrupt_token_file_is_one_line_and_logout_removes_it(live_api: LiveApi, home):
    token_file(home).parent.mkdir(parents=True)
    token_file(home).write_text("{not json")
    result = run_cli("--url", live_api.url, "products", "list", env=home)
    assert result.returncode == 1
    assert result.stderr == (
        f"lm-cli: error: the token file {token_file(home)} is corrupt: run lm-cli login "
        "(or lm-cli logout)\n"
    )
    assert run_cli("logout", env=home).returncode == 0
    assert not token_file(home).exists()


def test_an_ended_session_says_to_log_in(live_api: LiveApi, home):
    token_file(home).parent.mkdir(parents=True)
    session = {
        "api_url": live_api.url,
        "issuer_url": live_api.url,
        "client_id": "lm-cli",
        "token_endpoint": f"{live_api.url}/lm/oauth/token",
        "access_token": live_api.token(),
        "refresh_token": None,
        "expires_at": time.time() - 60,
    }
    token_file(home).write_text(json.dumps(session))
    expired = run_cli("--url", live_api.url, "products", "list", env=home)
    assert expired.returncode == 1
    assert expired.stderr == "lm-cli: error: your login session has expired: run lm-cli login\n"

    token_file(home).write_text(json.dumps({**session, "expires_at": None, "access_token": "x"}))
    refused = run_cli("--url", live_api.url, "products", "list", env=home)
    assert refused.returncode == 1
    assert refused.stderr.startswith("lm-cli: error: 401 Unauthorized: ")
    assert refused.stderr.endswith("; your login session has ended: run lm-cli login\n")


def test_a_stored_token_is_never_sent_to_another_api(live_api: LiveApi, home):
    token_file(home).parent.mkdir(parents=True)
    session = {
        "api_url": "http://elsewhere.example:8000",
        "issuer_url": "http://elsewhere.example:8000",
        "client_id": "lm-cli",
        "token_endpoint": "http://elsewhere.example:8000/lm/oauth/token",
        "access_token": live_api.token(),
    }
    token_file(home).write_text(json.dumps(session))
    result = run_cli("--url", live_api.url, "products", "list", env=home)
    assert result.returncode == 1
    assert "401 Unauthorized" in result.stderr and "run lm-cli login" in result.stderr


def test_show_token_without_login_says_so(home):
    result = run_cli("show-token", env=home)
    assert (result.returncode, result.stderr) == (
        1,
        "lm-cli: error: not logged in: run lm-cli login\n",
    )
    assert run_cli("logout", env=home).stdout.startswith("not logged in")


@pytest.mark.usefixtures("alice")
def test_login_polls_at_the_issuers_interval_and_slows_down_when_told(live_api: LiveApi):
    """Polls sent too early (the recorded sleeps are skipped) get `slow_down`: +5 s each."""
    waits: list[float] = []
    flow = DeviceLogin(Issuer(live_api.url, 10), live_api.url, "lm-cli", say=lambda _: None)

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:  # approve, then wait as asked
            answer_device_login(codes["verification_uri"], codes["user_code"], "alice", PASSWORD)
            time.sleep(5)

    flow.sleep = sleep
    codes = flow.begin()
    session = flow.wait(codes)
    # Before each poll: the interval, again after `authorization_pending`, +5 s per `slow_down`.
    assert waits == [5, 5, 10, 15]
    assert session.refresh_token and session.api_url == live_api.url
