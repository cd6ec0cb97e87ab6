"""The API (real gunicorn) while its PostgreSQL is down and after it returns.

Every endpoint that needs the database answers 503 with a JSON error and Retry-After, never 500;
when PostgreSQL is back the same processes serve again, without a restart. The database here is
a cluster of the test's own, so stopping it touches no other test.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.api import ApiServer
from devstack.postgres import PostgresCluster
from devstack.processes import free_port, wait_for
from tests.conftest import throwaway_postgres

JOB = {"slurm_job_id": "1", "username": "u", "lead_host": "h"}
CONFIGURATION = {"name": "c", "cluster_client_id": "agent", "grace_time": 1, "type": "rlm"}
REPORT = [{"product_name": "a", "feature_name": "b", "total": 1, "used": 0}]
# (method, path, JSON body): a request every resource's endpoints would serve from the database.
REQUESTS = [
    ("GET", "/lm/configurations", None),
    ("GET", "/lm/configurations/by_client_id", None),
    ("GET", "/lm/configurations/1", None),
    ("POST", "/lm/configurations", CONFIGURATION),
    ("PUT", "/lm/configurations/1", {"grace_time": 2}),
    ("DELETE", "/lm/configurations/1", None),
    ("GET", "/lm/license_servers", None),
    ("POST", "/lm/license_servers", {"config_id": 1, "host": "h", "port": 1}),
    ("GET", "/lm/products", None),
    ("POST", "/lm/products", {"name": "p"}),
    ("PUT", "/lm/products/1", {"name": "q"}),
    ("GET", "/lm/features", None),
    ("GET", "/lm/features/1", None),
    ("PUT", "/lm/features/by_client_id", REPORT),
    ("GET", "/lm/jobs", None),
    ("POST", "/lm/jobs", {**JOB, "bookings": [{"product_feature": "a.b", "quantity": 1}]}),
    ("DELETE", "/lm/jobs/slurm_job_id/1", None),
    ("GET", "/lm/bookings", None),
    ("DELETE", "/lm/bookings/1", None),
    ("GET", "/lm/health", None),
]  # fmt: skip


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    with throwaway_postgres("lm-test-outage-") as cluster:
        yield cluster


@pytest.fixture
def api(own_postgres: PostgresCluster, tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(
        state_dir=tmp_path / "api",
        database_url=own_postgres.ensure_database("lm_outage"),
        port=free_port(),
        workers=2,
    )
    server.migrate()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def admin_headers(api: ApiServer) -> dict[str, str]:
    credentials = api.create_client("outage-admin", ["license-manager:admin"])
    answer = requests.post(
        f"{api.url}/lm/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_every_endpoint_answers_503_while_the_database_is_down_then_recovers(
    own_postgres: PostgresCluster, api: ApiServer
) -> None:
    admin = admin_headers(api)
    assert requests.get(f"{api.url}/lm/configurations", headers=admin, timeout=10).ok

    own_postgres.stop()
    for method, path, body in REQUESTS:
        answer = requests.request(method, api.url + path, json=body, headers=admin, timeout=30)
        assert answer.status_code == 503, (method, path, answer.status_code, answer.text[:200])
        assert answer.headers["Retry-After"].isdigit(), (method, path)
        if path != "/lm/health":
            assert answer.json()["code"] == 503
            assert answer.json()["message"]
    token = requests.post(
        f"{api.url}/lm/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("outage-admin", "wrong"),
        timeout=30,
    )
    assert token.status_code == 503 and token.headers["Retry-After"], token.text

    own_postgres.ensure_running()
    # The same gunicorn processes serve again: each worker replaces its dead connections.
    for _ in range(8):
        answer = requests.get(f"{api.url}/lm/configurations", headers=admin, timeout=30)
        assert answer.status_code == 200, answer.text


def test_a_database_restart_under_load_gives_only_clean_answers(
    own_postgres: PostgresCluster, api: ApiServer
) -> None:
    admin = admin_headers(api)
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    bad: list[str] = []

    def load() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            try:
                answer = requests.post(
                    f"{api.url}/lm/products", json={"name": f"p{threading.get_ident()}-{number}"},
                    headers=admin, timeout=30,
                )  # fmt: skip
            except requests.RequestException as error:
                bad.append(repr(error))
                continue
            statuses[answer.status_code] += 1
            if answer.status_code == 503 and answer.json()["code"] != 503:
                bad.append(answer.text)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: statuses[201] >= 20, timeout=60, what="requests before the restart")
        own_postgres.stop()
        wait_for(lambda: statuses[503] >= 4, timeout=60, what="503 answers while down")
        own_postgres.ensure_running()
        served = statuses[201]
        wait_for(lambda: statuses[201] >= served + 20, timeout=60, what="recovery")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert set(statuses) <= {201, 503}, statuses
    assert bad == []
