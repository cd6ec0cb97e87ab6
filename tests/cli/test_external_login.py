"""`lm-cli login` against a real external OpenID provider (npm's certified `oidc-provider`).

The provider runs on Node.js from tests/oidc/provider.mjs; the API trusts it (LM_OIDC_ISSUER)
and validates its JWT access tokens. lm-cli finds the device endpoint in its discovery document.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from backend.settings import Settings
from devstack.postgres import PostgresCluster
from devstack.processes import free_port, wait_for
from tests.browser import chromium
from tests.cli.conftest import run_cli, served
from tests.cli.login import LoginProcess

AUDIENCE = "https://license-manager.test/lm"
SCOPE = "openid offline_access license-manager:admin"
PROJECT_DIR = Path(__file__).resolve().parents[2]
PROVIDER_CONFIG = PROJECT_DIR / "tests" / "oidc" / "provider.mjs"


def provider_directory() -> Path:
    """Where scripts/lib.sh installs oidc-provider from the npm registry (installed if missing)."""
    subprocess.run(
        ["bash", "-c", "source scripts/lib.sh && ensure_oidc_provider"],
        cwd=PROJECT_DIR,
        check=True,
        timeout=600,
    )
    return Path(os.environ.get("LM_OIDC_PROVIDER_DIR", PROJECT_DIR / ".lm-dev" / "oidc-provider"))


def discovery(url: str) -> bool:
    try:
        return requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oidc-provider on Node.js at 127.0.0.1:<free port>; its log is kept for failures."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("oidc-provider") / "provider.log"
    env = {**os.environ, "OIDC_PROVIDER_DIR": str(provider_directory())}
    with log.open("w") as output:
        process = subprocess.Popen(
            ["node", str(PROVIDER_CONFIG), str(port), AUDIENCE],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: discovery(url) or process.poll() is not None, 30, "oidc-provider")
        assert process.poll() is None, log.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def external_api(postgres: PostgresCluster, provider: str) -> Iterator[str]:
    """The API trusting only the provider's tokens (LM_OIDC_ISSUER, LM_OIDC_AUDIENCE)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        database_url=postgres.ensure_database("lm_cli_external"),
        public_url=url,
        oidc_issuer=provider,
        oidc_audience=AUDIENCE,
    )
    with served(settings, port):
        yield url


def approve_at_the_provider(complete_uri: str, name: str) -> str:
    """The provider's own pages: confirm the code, log in (development login), consent."""
    with chromium() as browser:
        wait = WebDriverWait(browser, 20)
        browser.get(complete_uri)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # the code is mine
        wait.until(expected_conditions.presence_of_element_located((By.NAME, "login")))
        browser.find_element(By.NAME, "login").send_keys(name)
        browser.find_element(By.NAME, "password").send_keys("any password")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(expected_conditions.presence_of_element_located((By.NAME, "prompt")))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # consent
        wait.until(expected_conditions.title_is("Sign-in Success"))
        return browser.title


def test_login_through_an_external_provider(provider: str, external_api: str, tmp_path: Path):
    home = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "LM_API_URL": external_api,
        "LM_ISSUER_URL": provider,
        "LM_LOGIN_SCOPE": SCOPE,
    }
    login = LoginProcess.start(env=home)
    assert login.verification_uri == f"{provider}/device"
    assert approve_at_the_provider(login.complete_uri, "carol") == "Sign-in Success"
    result = login.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"Logged in as carol to {external_api}")

    claims = json.loads(run_cli("show-token", "--decode", env=home).stdout)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (provider, AUDIENCE, "carol")
    listed = run_cli("configurations", "list", env=home)
    assert (listed.returncode, listed.stdout) == (0, "no configurations\n")
    # The API's own issuer is off: its login page says where people log in instead.
    page = requests.get(f"{external_api}/lm/device", timeout=10)
    assert page.status_code == 404 and f"People log in at {provider}" in page.text

    stored = json.loads((tmp_path / "config" / "license-manager" / "tokens.json").read_text())
    assert stored["revocation_endpoint"] == f"{provider}/token/revocation"
    logged_out = run_cli("logout", env=home)
    assert logged_out.returncode == 0 and logged_out.stdout.startswith("logged out: removed")
    renewed = requests.post(
        f"{provider}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": stored["refresh_token"],
            "client_id": "lm-cli",
        },
        timeout=10,
    )
    assert renewed.json()["error"] == "invalid_grant"  # the provider revoked it


def test_an_unreachable_provider_is_one_line(external_api: str, tmp_path: Path):
    gone = f"http://127.0.0.1:{free_port()}"
    home = {"XDG_CONFIG_HOME": str(tmp_path), "LM_API_URL": external_api, "LM_ISSUER_URL": gone}
    result = run_cli("login", env=home)
    assert result.returncode == 1
    assert result.stderr == (
        f"lm-cli: error: cannot reach the identity provider at {gone}: Connection refused\n"
    )
