"""`lm-cli login` end to end with a real browser: headless Chromium logs in and approves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from backend.auth.people import create_person
from backend.extensions import db
from tests.browser import chromium
from tests.cli.conftest import LiveApi, run_cli, set_up_pool, table_rows
from tests.cli.login import LoginProcess

PASSWORD = "bob's long password"
ADMIN = "license-manager:admin"


@pytest.fixture
def bob(api: LiveApi) -> str:
    with api.app.app_context():
        create_person(db.session, name="bob", password=PASSWORD, permissions=[ADMIN])
    return "bob"


@pytest.mark.usefixtures("bob")
def test_device_login_in_headless_chromium(api: LiveApi, tmp_path: Path):
    home = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "LM_API_URL": api.url}
    token_file = tmp_path / "config" / "license-manager" / "tokens.json"
    login = LoginProcess.start(env=home)

    with chromium() as browser:
        # The person opens the printed address and types the printed code, as the prompt says.
        browser.get(login.verification_uri)
        assert browser.title == "Log in to lm-cli - License Manager"
        browser.find_element(By.ID, "user_code").send_keys(login.user_code)
        browser.find_element(By.ID, "name").send_keys("bob")
        browser.find_element(By.ID, "password").send_keys("not bob's password")
        browser.find_element(By.ID, "approve").click()
        assert browser.find_element(By.ID, "error").text == "Wrong name or password."

        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "approve").click()
        outcome = browser.find_element(By.ID, "outcome").text
        assert outcome.startswith("Approved: lm-cli is now logged in as bob.")

    result = login.wait()
    assert result.returncode == 0, result.stderr
    assert "Logged in as bob" in result.stdout
    assert json.loads(token_file.read_text())["access_token"]

    set_up_pool(lambda *args: run_cli(*args, env=home))
    [row] = table_rows(run_cli("configurations", "list", env=home))
    assert (row["NAME"], row["CLUSTER"]) == ("abaqus-pool", "cluster-a")

    assert run_cli("logout", env=home).returncode == 0
    assert not token_file.exists()
    after = run_cli("configurations", "list", env=home)
    assert after.returncode == 1 and "run lm-cli login" in after.stderr
