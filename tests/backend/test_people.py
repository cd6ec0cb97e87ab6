"""People of the built-in issuer: `lm-backend users ...`, the device login and its page."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from backend.extensions import db
from backend.models import DeviceAuthorization, Person, RefreshToken

CLI_CLIENT = "lm-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
READER = ["license-manager:configuration:read", "license-manager:job:create"]
PASSWORD = "correct horse battery"


@pytest.fixture
def run_cli(app: Flask, client):
    runner = app.test_cli_runner()

    def run(*args: str, password: str | None = PASSWORD):
        return runner.invoke(args=list(args), input=None if password is None else password + "\n")

    return run


@pytest.fixture
def alice(run_cli) -> str:
    result = run_cli("users", "create", "--name", "alice", "--permissions", *READER)
    assert result.exit_code == 0, result.output
    return "alice"


def start_login(client: FlaskClient, **form: str) -> dict:
    answer = client.post("/lm/oauth/device", data={"client_id": CLI_CLIENT, **form})
    assert answer.status_code == 200, answer.text
    return answer.json


def poll(client: FlaskClient, device_code: str) -> TestResponse:
    form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLI_CLIENT}
    return client.post("/lm/oauth/token", data=form)


def csrf_of(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def submit(
    client: FlaskClient, user_code: str, *, password: str = PASSWORD, decision: str = "approve"
) -> TestResponse:
    """What the browser does: load the page (CSRF cookie and token), then post the form."""
    page = client.get(f"/lm/device?user_code={user_code}")
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_of(page),
        "user_code": user_code,
        "name": "alice",
        "password": password,
        "decision": decision,
    }
    return client.post("/lm/device", data=form)


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def logged_in(client: FlaskClient, alice: str) -> dict:
    codes = start_login(client)
    assert submit(client, codes["user_code"]).status_code == 200
    answer = poll(client, codes["device_code"])
    assert answer.status_code == 200, answer.text
    return answer.json


# --- lm-backend users ---------------------------------------------------------------------


def test_users_create_stores_a_standard_hash_and_list_shows_permissions(run_cli, app, alice):
    with app.app_context():
        person = db.session.scalars(select(Person)).one()
        assert person.password_hash.startswith("scrypt:")
        assert PASSWORD not in person.password_hash
    listed = run_cli("users", "list", password=None)
    assert listed.exit_code == 0
    assert listed.output.split("\t") == ["alice", " ".join(READER) + "\n"]


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--name", "alice", "--permissions", "license-manager:nope"], PASSWORD, "unknown"),
        (["--name", "bob", "--permissions", *READER], "short", "at least 8"),
        (["--name", "bad name", "--permissions", *READER], PASSWORD, "must be 1-64"),
        (["--name", "alice", "--permissions", *READER], PASSWORD, "already exists"),
    ],
)
def test_users_create_refuses_bad_input_in_one_line(run_cli, alice, args, password, message):
    result = run_cli("users", "create", *args, password=password)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_set_password_and_delete(run_cli, client, alice):
    assert run_cli("users", "set-password", "alice", password="another password").exit_code == 0
    codes = start_login(client)
    assert submit(client, codes["user_code"]).status_code == 401
    assert submit(client, codes["user_code"], password="another password").status_code == 200
    assert run_cli("users", "delete", "alice", password=None).exit_code == 0
    assert run_cli("users", "list", password=None).output == ""
    missing = run_cli("users", "delete", "alice", password=None)
    assert missing.exit_code == 1 and "no person 'alice'" in missing.output


# --- the device login ---------------------------------------------------------------------


def test_device_login_gives_a_persons_token_with_their_permissions(client, alice):
    codes = start_login(client)
    assert codes["verification_uri"] == "http://lm.test/lm/device"
    assert codes["verification_uri_complete"].endswith(f"?user_code={codes['user_code']}")
    assert codes["interval"] == 5 and codes["expires_in"] == 600
    pending = poll(client, codes["device_code"])
    assert pending.status_code == 400 and pending.json["error"] == "authorization_pending"

    approved = submit(client, codes["user_code"])
    assert approved.status_code == 200
    assert "Approved: lm-cli is now logged in as alice" in approved.text

    tokens = poll(client, codes["device_code"]).json
    assert tokens["refresh_token"]
    token_claims = claims(tokens["access_token"])
    assert token_claims["sub"] == "alice"
    assert token_claims["client_id"] == CLI_CLIENT
    assert token_claims["permissions"] == READER
    # The device code worked once.
    assert poll(client, codes["device_code"]).json["error"] == "invalid_request"


def test_a_persons_token_reads_but_is_no_cluster(client, alice):
    headers = {"Authorization": f"Bearer {logged_in(client, alice)['access_token']}"}
    assert client.get("/lm/configurations", headers=headers).status_code == 200
    job = {"slurm_job_id": "1", "username": "alice", "lead_host": "n1", "bookings": []}
    posted = client.post("/lm/jobs", json=job, headers=headers)
    assert posted.status_code == 422
    assert "The token is person 'alice''s, who is no cluster" in posted.json["message"]
    as_cluster = client.post(
        "/lm/jobs", json={**job, "cluster_client_id": "cluster-a"}, headers=headers
    )
    assert as_cluster.status_code == 403
    assert "person 'alice' may not access cluster 'cluster-a'" in as_cluster.json["message"]


def test_refresh_rotates_and_revocation_ends_the_session(client, alice):
    tokens = logged_in(client, alice)
    form = {"grant_type": "refresh_token", "client_id": CLI_CLIENT}
    renewed = client.post(
        "/lm/oauth/token", data={**form, "refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    assert claims(renewed.json["access_token"])["sub"] == "alice"
    reused = client.post("/lm/oauth/token", data={**form, "refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 400 and reused.json["error"] == "invalid_grant"

    revoke = {"token": renewed.json["refresh_token"], "client_id": CLI_CLIENT}
    assert client.post("/lm/oauth/revoke", data=revoke).status_code == 200
    after = client.post(
        "/lm/oauth/token", data={**form, "refresh_token": renewed.json["refresh_token"]}
    )
    assert after.json["error"] == "invalid_grant"


def test_refresh_tokens_are_stored_hashed(client, app, alice):
    tokens = logged_in(client, alice)
    with app.app_context():
        stored = db.session.scalars(select(RefreshToken.token_hash)).one()
    assert tokens["refresh_token"] not in stored and len(stored) == 64


def test_denied_login_answers_access_denied(client, alice):
    codes = start_login(client)
    denied = submit(client, codes["user_code"], decision="deny")
    assert "Denied" in denied.text
    assert poll(client, codes["device_code"]).json["error"] == "access_denied"


def test_expired_code_is_refused_on_the_page_and_to_the_poller(client, app, alice):
    codes = start_login(client)
    with app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.session.execute(update(DeviceAuthorization).values(expires_at=past))
        db.session.commit()
    page = submit(client, codes["user_code"])
    assert page.status_code == 400 and "has expired: run lm-cli login again" in page.text
    assert poll(client, codes["device_code"]).json["error"] == "expired_token"


def test_wrong_password_and_unknown_code_are_one_clear_message(client, alice):
    codes = start_login(client)
    wrong = submit(client, codes["user_code"], password="not the password")
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    unknown = submit(client, "BBBB-CCCC")
    assert unknown.status_code == 400 and "Unknown code BBBB-CCCC" in unknown.text
    assert poll(client, codes["device_code"]).json["error"] == "authorization_pending"


def test_the_form_needs_its_csrf_token(client, alice):
    codes = start_login(client)
    client.get("/lm/device")
    form = {"user_code": codes["user_code"], "name": "alice", "password": PASSWORD}
    refused = client.post(
        "/lm/device", data={**form, "csrf_token": "forged", "decision": "approve"}
    )
    assert refused.status_code == 400 and "reload the page" in refused.text
    assert poll(client, codes["device_code"]).json["error"] == "authorization_pending"


def test_the_page_is_local_html_that_cannot_be_framed(client):
    page = client.get("/lm/device?user_code=bbbbcccc")
    assert page.status_code == 200
    assert 'value="BBBB-CCCC"' in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "SameSite=Strict" in page.headers["Set-Cookie"]


def test_password_guessing_is_rate_limited(client, alice):
    codes = start_login(client)
    statuses = [submit(client, codes["user_code"], password="guess").status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    limited = submit(client, codes["user_code"])
    assert limited.status_code == 429 and "Too many attempts" in limited.text


def test_polling_faster_than_the_interval_is_told_to_slow_down(client, alice):
    codes = start_login(client)
    assert poll(client, codes["device_code"]).json["error"] == "authorization_pending"
    assert poll(client, codes["device_code"]).json["error"] == "slow_down"


def test_only_the_login_client_may_start_a_login(client):
    answer = client.post("/lm/oauth/device", data={"client_id": "cluster-a"})
    assert answer.status_code in (400, 401) and answer.json["error"] == "invalid_client"


def test_device_token_verifies_like_any_token(client, app, alice):
    token = logged_in(client, alice)["access_token"]
    with app.app_context():
        identity = app.extensions["license_manager_auth"].verifier.verify(token)
    assert identity.person == "alice" and identity.client_id == ""


def test_device_codes_are_rate_limited_with_a_json_error(client):
    statuses = [
        client.post("/lm/oauth/device", data={"client_id": CLI_CLIENT}).status_code
        for _ in range(11)
    ]
    assert statuses == [200] * 10 + [429]
    limited = client.post("/lm/oauth/device", data={"client_id": CLI_CLIENT})
    assert limited.status_code == 429 and limited.json["code"] == 429


def test_the_browser_stays_logged_in_until_it_signs_out(client, app, alice):
    logged_in(client, alice)  # approved with the password: the browser has a session now
    codes = start_login(client)
    page = client.get(f"/lm/device?user_code={codes['user_code']}")
    assert "Logged in as <strong>alice</strong>" in page.text
    assert 'name="password"' not in page.text
    form = {"csrf_token": csrf_of(page), "user_code": codes["user_code"], "decision": "approve"}
    approved = client.post("/lm/device", data=form)
    assert approved.status_code == 200 and "logged in as alice" in approved.text
    assert claims(poll(client, codes["device_code"]).json["access_token"])["sub"] == "alice"

    signed_out = client.post("/lm/device", data={**form, "decision": "sign-out"})
    assert 'name="password"' in signed_out.text
    again = start_login(client)
    refused = client.post("/lm/device", data={**form, "user_code": again["user_code"]})
    assert refused.status_code == 401


def test_only_a_persons_own_token_is_a_browser_session(client, app, auth_headers, alice):
    cluster_token = auth_headers()["Authorization"].removeprefix("Bearer ")
    client.set_cookie("lm_session", cluster_token, path="/lm/")
    page = client.get("/lm/device")
    assert 'name="password"' in page.text and "Logged in as" not in page.text
    client.set_cookie("lm_session", "forged", path="/lm/")
    assert 'name="password"' in client.get("/lm/device").text
