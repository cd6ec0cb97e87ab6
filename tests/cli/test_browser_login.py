"""`lm-cli login` end to end with a real browser: headless Chromium logs in and approves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import chromium
from tests.cli.conftest import run_cli, set_up_pool, table_rows
from tests.cli.login import LoginProcess
from tests.live_api import LiveApi

PASSWORD = "bob's long password"


@pytest.fixture
def bob(live_api: LiveApi) -> str:
    return live_api.add_person("bob", PASSWORD)


@pytest.mark.usefixtures("bob")
def test_device_login_in_headless_chromium(live_api: LiveApi, tmp_path: Path):
    home = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "LM_API_URL": live_api.url}
    token_file = tmp_path / "config" / "license-manager" / "tokens.json"
    login = LoginProcess.start(env=home)

    with chromium() as browser:
        shown = WebDriverWait(browser, 20).until
        # The person opens the printed address and types the printed code, as the prompt says.
        browser.get(login.verification_uri)
        assert browser.title == "Log in to lm-cli - License Manager"
        browser.find_element(By.ID, "user_code").send_keys(login.user_code)
        browser.find_element(By.ID, "name").send_keys("bob")
        browser.find_element(By.ID, "password").send_keys("not bob's password")
        browser.find_element(By.ID, "approve").click()
        error = shown(expected_conditions.presence_of_element_located((By.ID, "error")))
        assert error.text == "Wrong name or password."

        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "approve").click()
        outcome = shown(expected_conditions.presence_of_element_located((By.ID, "outcome"))).text
        assert outcome.startswith("Approved: lm-cli is now logged in as bob.")

        result = login.wait()
        assert result.returncode == 0, result.stderr
        assert "Logged in as bob" in result.stdout
        first_token = json.loads(token_file.read_text())["access_token"]

        # Logging in again from the same browser: its session stands for bob, no password.
        again = LoginProcess.start(env=home)
        browser.get(again.complete_uri)
        signed_in = shown(expected_conditions.presence_of_element_located((By.ID, "signed-in")))
        assert signed_in.text == "Logged in as bob."
        assert browser.find_element(By.ID, "user_code").get_attribute("value") == again.user_code
        browser.find_element(By.ID, "approve").click()
        shown(expected_conditions.presence_of_element_located((By.ID, "outcome")))
        assert again.wait().returncode == 0
    assert json.loads(token_file.read_text())["access_token"] != first_token

    set_up_pool(lambda *args: run_cli(*args, env=home))
    [row] = table_rows(run_cli("configurations", "list", env=home))
    assert (row["NAME"], row["CLUSTER"]) == ("abaqus-pool", "cluster-a")

    assert run_cli("logout", env=home).returncode == 0
    assert not token_file.exists()
    after = run_cli("configurations", "list", env=home)
    assert after.returncode == 1 and "run lm-cli login" in after.stderr
