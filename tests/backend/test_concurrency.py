"""Two real API processes (gunicorn, two workers each) on one database never overbook a pool.

Many clients race for the last licenses of pools shared by two clusters; every admission locks
the pool's feature rows, so the granted total must stop exactly at what the rule allows. A
second race runs through a PostgreSQL restart while one cluster names the pool in capitals and
reports a total 100 times the server's.

To make the race certain rather than likely, a gate holds the first wave of admissions at their
booking insert (after their check) until every worker has a request in flight: without the row
locks they would all have checked the same state, and overbook.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from backend.booking import booked_on_pools, pool_figures
from devstack.processes import wait_for
from tests.backend.conftest import api_processes
from tests.backend.pools import add_configuration

SHARED_SERVER = [("licserv1", 27000)]
# Each pool: total 20, used 10, reserved 7, so the rule allows 3 more.
POOL = {"total": 20, "used": 10, "reserved": 7}
SOLVER, MESHER = "abaqus.abaqus", "ansa.mesher"
SOLVER_ONLY_JOBS = 30  # 1 solver license each: demand exceeds supply, the solver pool must fill
BOTH_JOBS = 15  # 1 solver + 2 mesher licenses each: at most 1 fits in the mesher pool
PROCESSES, WORKERS = 2, 2
CLIENTS = 16
GATE_LOCK = 7301  # advisory lock id the gate trigger waits on
GATE_SQL = f"""
CREATE FUNCTION test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared({GATE_LOCK}); RETURN NEW; END $$;
CREATE TRIGGER test_gate BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION test_gate();
"""


@pytest.fixture
def open_gate(database_url: str) -> Iterator[Callable[[], None]]:
    """Hold booking inserts until the returned `open_gate` sees every worker waiting on a lock."""
    connection = psycopg.connect(database_url, autocommit=True)
    cursor = connection.cursor()
    cursor.execute(GATE_SQL)
    cursor.execute("SELECT pg_advisory_lock(%s)", (GATE_LOCK,))

    def waiting_requests() -> bool:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] >= PROCESSES * WORKERS

    def open_gate() -> None:
        wait_for(waiting_requests, timeout=60, what="every API worker to wait at the gate")
        cursor.execute("SELECT pg_advisory_unlock(%s)", (GATE_LOCK,))

    try:
        yield open_gate
    finally:
        cursor.execute("DROP TRIGGER test_gate ON bookings; DROP FUNCTION test_gate()")
        connection.close()


@pytest.fixture
def api_urls(app, database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn API processes of two workers each."""
    with api_processes(database_url, tmp_path, PROCESSES, WORKERS) as urls:
        yield urls


def test_concurrent_admissions_on_two_processes_never_overbook(
    app, client, auth_headers, api_urls, open_gate
):
    features = {
        cluster: add_configuration(app, cluster, {SOLVER: POOL, MESHER: POOL}, SHARED_SERVER)
        for cluster in ("cluster-a", "cluster-b")
    }
    tokens = {
        cluster: auth_headers("license-manager:job:create", client_id=cluster)
        for cluster in features
    }
    jobs = [{SOLVER: 1}] * SOLVER_ONLY_JOBS + [{SOLVER: 1, MESHER: 2}] * BOTH_JOBS
    # Interleave the kinds so both compete while the pools fill up.
    jobs = [job for pair in itertools.zip_longest(jobs[::2], jobs[1::2]) for job in pair if job]

    def post(number_and_job: tuple[int, dict[str, int]]) -> tuple[int, dict[str, int]]:
        number, licenses = number_and_job
        cluster = ("cluster-a", "cluster-b")[number % 2]
        answer = requests.post(
            f"{api_urls[(number // 2) % PROCESSES]}/jobs",
            json={
                "slurm_job_id": str(number),
                "username": "user",
                "lead_host": "node",
                "bookings": [{"product_feature": n, "quantity": q} for n, q in licenses.items()],
            },
            headers=tokens[cluster],
            timeout=60,
        )
        return answer.status_code, licenses

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = pool.map(post, enumerate(jobs))
        open_gate()
        results = list(answers)

    assert {status for status, _ in results} == {201, 409}
    granted: dict[str, int] = {SOLVER: 0, MESHER: 0}
    for status, licenses in results:
        if status == 201:
            for name, quantity in licenses.items():
                granted[name] += quantity
    with app.app_context():
        booked = booked_on_pools(features["cluster-a"].values())
    allowed = POOL["total"] - POOL["used"] - POOL["reserved"]
    # Demand on the solver pool exceeds supply, and a solver-only job is refused only when the
    # pool is full: it ends exactly full. The mesher pool may stop short (a job needs both).
    assert booked[features["cluster-a"][SOLVER]] == granted[SOLVER] == allowed
    assert booked[features["cluster-a"][MESHER]] == granted[MESHER] <= allowed


# The restart test: cluster-b spells the pool in capitals and reports a total 100 times the
# server's, while PostgreSQL restarts under the load of both clusters on both API processes.
SERVER_TOTAL, SERVER_USED = 10, 2
RESTART_JOBS = 60


def test_no_overbooking_across_a_database_restart_with_split_and_inflated_reports(
    app, client, auth_headers, api_urls, postgres
):
    features = {
        "cluster-a": add_configuration(
            app, "cluster-a", {SOLVER: {"total": SERVER_TOTAL, "used": SERVER_USED}}, SHARED_SERVER
        )[SOLVER],
        "cluster-b": add_configuration(
            app, "cluster-b", {"abaqus.ABAQUS": {"total": 1000, "used": 0}}, SHARED_SERVER
        )["abaqus.ABAQUS"],
    }
    # The catalogue refuses the capitals: cluster-b's feature joins the same product's pool.
    capital = client.post("/lm/products", json={"name": "ABAQUS"}, headers=auth_headers())
    assert capital.status_code == 409
    names = {"cluster-a": SOLVER, "cluster-b": "ABAQUS.ABAQUS"}
    headers = {
        cluster: auth_headers(
            "license-manager:job:create", "license-manager:feature:update", client_id=cluster
        )
        for cluster in names
    }
    inflated = [{"product_name": "ABAQUS", "feature_name": "abaqus", "total": 1000, "used": 0}]
    statuses: list[int] = []

    def post(number: int) -> None:
        cluster = ("cluster-a", "cluster-b")[number % 2]
        url = api_urls[(number // 2) % PROCESSES]
        if cluster == "cluster-b" and number % 6 == 1:  # its agent keeps inflating
            requests.put(
                f"{url}/features/by_client_id", json=inflated, headers=headers[cluster], timeout=60
            )
        answer = requests.post(
            f"{url}/jobs",
            json={
                "slurm_job_id": f"r{number}",
                "username": "user",
                "lead_host": "node",
                "bookings": [{"product_feature": names[cluster], "quantity": 1}],
            },
            headers=headers[cluster],
            timeout=60,
        )
        statuses.append(answer.status_code)

    with ThreadPoolExecutor(CLIENTS) as pool:
        first = list(pool.map(post, range(RESTART_JOBS // 3)))
        postgres.stop()
        during = list(pool.map(post, range(RESTART_JOBS // 3, RESTART_JOBS // 2)))
        postgres.ensure_running()
        wait_for(lambda: requests.get(f"{api_urls[0]}/health", timeout=10).ok, 60, "recovery")
        after = list(pool.map(post, range(RESTART_JOBS // 2, RESTART_JOBS)))
    assert len(first) + len(during) + len(after) == RESTART_JOBS

    assert set(statuses) <= {201, 409, 503}, statuses
    assert 503 in statuses  # the restart really happened under load
    with app.app_context():
        figures = pool_figures(features.values())
    booked = {figures[feature].booked for feature in features.values()}
    # One pool, never past what the server has: 10 total, 2 used, whatever cluster-b claims.
    assert booked == {SERVER_TOTAL - SERVER_USED}
    assert statuses.count(201) <= SERVER_TOTAL - SERVER_USED
