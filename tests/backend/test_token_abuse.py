"""The token endpoint under abuse: brute force, enumeration, undecodable credentials, revocation.

Failed attempts are limited per client id and per remote address with counters in PostgreSQL,
so the limit holds across gunicorn workers and API processes (checked with two real ones).
"""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from backend import create_app
from backend.auth.clients import NewClient, create_client, delete_client
from backend.extensions import db
from backend.settings import Settings
from tests.backend.conftest import PUBLIC_URL, api_processes

LIMIT = 10  # LM_TOKEN_FAILURE_LIMIT's default
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def agent(app: Flask, client: FlaskClient) -> NewClient:
    with app.app_context():
        return create_client(db.session, name="cluster-a", permissions=["license-manager:admin"])


def basic(client_id: bytes | str, secret: bytes | str) -> dict[str, str]:
    raw = (client_id if isinstance(client_id, bytes) else client_id.encode()) + b":"
    raw += secret if isinstance(secret, bytes) else secret.encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def token(http: FlaskClient, client_id, secret, address: str = "10.0.0.1"):
    return http.post(
        "/lm/oauth/token",
        data=GRANT,
        headers=basic(client_id, secret),
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        (b"\xff\xfe", "secret"),
        ("cluster-a", b"\xff\x00"),
        ("cluster\x00a", "secret"),
        ("cluster-a", "sec\x00ret"),
        ("cluster%00a", "secret"),
        ("cluster%ffa", "secret"),
        ("x" * 100_000, "secret"),
        ("cluster-a", "s" * 100_000),
    ],
    ids=[
        "latin1-id", "binary-secret", "nul-id", "nul-secret", "quoted-nul", "bad-quoting",
        "long-id", "long-secret",
    ],
)  # fmt: skip
def test_undecodable_basic_credentials_are_invalid_client(client, agent, client_id, secret):
    answer = token(client, client_id, secret)
    assert answer.status_code == 401, answer.get_data()[:200]
    assert answer.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    "form",
    [
        "client_id=cluster%00a&client_secret=x",
        "client_id=cluster-a&client_secret=%00",
        "client_id=%ff%fe&client_secret=%ff",
        "client_id=cluster-a&client_secret=" + "%C0" * 1000,
    ],
)
def test_undecodable_form_credentials_are_invalid_client(client, agent, form):
    answer = client.post(
        "/lm/oauth/token",
        data=f"grant_type=client_credentials&{form}",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 401, answer.get_data()[:200]
    assert answer.json["error"] == "invalid_client"


def test_basic_credentials_that_are_not_base64_are_invalid_client(client, agent):
    for header in ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"]:
        answer = client.post("/lm/oauth/token", data=GRANT, headers={"Authorization": header})
        assert answer.status_code == 401, header


def test_failed_attempts_for_one_client_id_are_limited_from_any_address(client, agent):
    for attempt in range(LIMIT):
        assert token(client, "cluster-a", "wrong", f"10.0.1.{attempt}").status_code == 401
    # Past the limit even the right secret waits: a brute force cannot tell it found it.
    refused = token(client, "cluster-a", agent.client_secret, "10.0.2.1")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json["error"] == "slow_down"
    assert refused.json["error_description"].startswith("too many failed attempts")


def test_failed_attempts_from_one_address_are_limited_for_any_client_id(app, client, agent):
    for attempt in range(LIMIT):
        assert token(client, f"guess-{attempt}", "wrong", "10.0.3.1").status_code == 401
    assert token(client, "cluster-a", agent.client_secret, "10.0.3.1").status_code == 429
    # Another address with the same client is not affected.
    assert token(client, "cluster-a", agent.client_secret, "10.0.3.2").status_code == 200


def test_successful_requests_do_not_count(client, agent):
    for _ in range(LIMIT * 2):
        assert token(client, "cluster-a", agent.client_secret, "10.0.4.1").status_code == 200


def test_unknown_and_known_client_ids_get_the_same_answer_at_the_same_cost(client, agent):
    """An unknown id is checked against a decoy hash: without it the answer came ~50x faster
    (no scrypt), which told an attacker which ids exist. The bound is loose on purpose."""

    def timed(client_id: str, address: str):
        started = time.perf_counter()
        answer = token(client, client_id, "wrong", address)
        return answer, time.perf_counter() - started

    known = [timed("cluster-a", f"10.0.5.{n}") for n in range(5)]
    unknown = [timed(f"nobody-{n}", f"10.0.6.{n}") for n in range(5)]
    assert {(a.status_code, a.get_data()) for a, _ in known + unknown} == {
        (known[0][0].status_code, known[0][0].get_data())
    }
    assert statistics.median(t for _, t in unknown) > 0.3 * statistics.median(t for _, t in known)


@pytest.fixture
def quick_recheck_app(database_url: str, app: Flask) -> FlaskClient:
    settings = Settings.from_env(database_url=database_url, public_url=PUBLIC_URL, client_recheck=1)
    return create_app(settings).test_client()


def test_a_deleted_clients_tokens_stop_within_the_recheck_time(
    app, client, quick_recheck_app, agent
):
    issued = token(quick_recheck_app, "cluster-a", agent.client_secret)
    headers = {"Authorization": f"Bearer {issued.json['access_token']}"}
    assert quick_recheck_app.get("/lm/products", headers=headers).status_code == 200
    with app.app_context():
        delete_client(db.session, "cluster-a")
        # A new client of the same id does not bring the old tokens back.
        create_client(db.session, name="cluster-a", permissions=["license-manager:admin"])
    time.sleep(1.1)
    refused = quick_recheck_app.get("/lm/products", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json["message"]


@pytest.fixture
def two_apis(app, client, database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    with api_processes(database_url, tmp_path, count=2) as urls:
        yield urls


def test_the_limit_holds_across_api_processes_and_workers(two_apis, agent):
    def attempt(url: str, secret: str) -> requests.Response:
        return requests.post(
            f"{url}/oauth/token",
            data=GRANT,
            auth=("cluster-a", secret),
            timeout=30,
        )

    statuses = [attempt(two_apis[n % 2], "wrong").status_code for n in range(LIMIT)]
    assert statuses == [401] * LIMIT
    for url in two_apis:
        for _ in range(3):  # each worker of each process
            refused = attempt(url, agent.client_secret)
            assert refused.status_code == 429
            assert refused.headers["Retry-After"].isdigit()
