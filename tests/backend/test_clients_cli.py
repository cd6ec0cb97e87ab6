"""`lm-backend clients create|list|delete`, run the way admins run them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import OAuthClient
from devstack.processes import console_script

AGENT = ["license-manager:job:create", "license-manager:booking:read"]


@pytest.fixture
def run_cli(app: Flask, client):
    """Invoke `lm-backend` commands in-process (the `client` fixture empties the tables after)."""
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=list(args))

    return run


def _create(run_cli, *extra: str) -> dict[str, str]:
    result = run_cli("clients", "create", "--name", "cluster-a", "--permissions", *AGENT, *extra)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_create_json_prints_exactly_id_and_secret(run_cli):
    created = _create(run_cli, "--json")
    assert set(created) == {"client_id", "client_secret"}
    assert created["client_id"] == "cluster-a"
    assert len(created["client_secret"]) >= 32


def test_created_client_obtains_a_working_token(run_cli, client):
    created = _create(run_cli, "--json")
    token = client.post(
        "/lm/oauth/token", data={"grant_type": "client_credentials", **created}
    ).json["access_token"]
    response = client.get("/lm/bookings", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_secret_is_stored_hashed_and_salted(run_cli, app):
    first = _create(run_cli, "--json")
    second = _create(run_cli, "--json", "--client-id", "cluster-b")
    with app.app_context():
        hashes = db.session.scalars(select(OAuthClient.secret_hash)).all()
    assert len(set(hashes)) == 2
    for stored in hashes:
        assert stored.startswith("scrypt$")
        assert first["client_secret"] not in stored
        assert second["client_secret"] not in stored


def test_create_without_json_prints_id_and_secret_lines(run_cli):
    result = run_cli("clients", "create", "--name", "ops", "--permissions", "license-manager:admin")
    assert result.exit_code == 0
    assert "client_id:     ops" in result.stdout
    assert "client_secret: " in result.stdout
    assert "cannot be shown again" in result.stderr


def test_permissions_may_be_one_space_separated_value(run_cli):
    _create(run_cli, "--json", "--client-id", "other")
    result = run_cli("clients", "create", "--name", "c", "--permissions", " ".join(AGENT))
    assert result.exit_code == 0
    listed = json.loads(run_cli("clients", "list", "--json").stdout)
    assert [entry["permissions"] for entry in listed] == [AGENT, AGENT]


@pytest.mark.parametrize(
    "permission", ["license-manager:jobs:create", "admin", "license-manager:job:erase"]
)
def test_unknown_permission_is_refused_by_name(run_cli, permission):
    result = run_cli(
        "clients", "create", "--name", "cluster-a", "--permissions", AGENT[0], permission
    )
    assert result.exit_code != 0
    assert f"unknown permission(s): {permission}" in result.stderr
    assert json.loads(run_cli("clients", "list", "--json").stdout) == []


def test_duplicate_client_is_refused(run_cli):
    _create(run_cli, "--json")
    result = run_cli("clients", "create", "--name", "cluster-a", "--permissions", *AGENT)
    assert result.exit_code != 0
    assert "already exists" in result.stderr


def test_name_unfit_for_a_client_id_asks_for_one(run_cli):
    result = run_cli("clients", "create", "--name", "Cluster A", "--permissions", *AGENT)
    assert result.exit_code != 0
    assert "--client-id" in result.stderr
    assert _create(run_cli, "--json", "--client-id", "cluster-a")["client_id"] == "cluster-a"


def test_list_shows_clients_without_secrets(run_cli):
    created = _create(run_cli, "--json")
    listed = json.loads(run_cli("clients", "list", "--json").stdout)
    assert [(entry["client_id"], entry["name"], entry["permissions"]) for entry in listed] == [
        ("cluster-a", "cluster-a", AGENT)
    ]
    plain = run_cli("clients", "list")
    assert plain.stdout.startswith("cluster-a\tcluster-a\t")
    assert created["client_secret"] not in plain.stdout + json.dumps(listed)


def test_deleted_client_cannot_get_tokens(run_cli, client):
    created = _create(run_cli, "--json")
    result = run_cli("clients", "delete", "cluster-a")
    assert result.exit_code == 0
    assert json.loads(run_cli("clients", "list", "--json").stdout) == []
    response = client.post("/lm/oauth/token", data={"grant_type": "client_credentials", **created})
    assert response.status_code == 401


def test_deleting_an_unknown_client_fails_clearly(run_cli):
    result = run_cli("clients", "delete", "nobody")
    assert result.exit_code != 0
    assert "no client 'nobody'" in result.stderr


def test_lm_backend_console_script_has_the_clients_group(database_url, client):
    """The installed `lm-backend` entry point, configured by LM_* variables like in production."""
    env = {**os.environ, "LM_DATABASE_URL": database_url}
    command = [console_script("lm-backend"), "clients", "create", "--name", "cluster-z", "--json"]
    done = subprocess.run(
        [*command, "--permissions", *AGENT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["client_id"] == "cluster-z"
    listed = subprocess.run(
        [console_script("lm-backend"), "clients", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.stdout.startswith("cluster-z\t")
