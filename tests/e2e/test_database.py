"""The API's database under operations: a failover to a streaming standby, and a restored backup.

Real PostgreSQL servers and a real gunicorn: what docs/deploy.md tells admins to do ("Database
failover", "Backups") is done here with the same commands and URL forms.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from backend.auth.permissions import ADMIN_PERMISSION
from devstack.api import ApiServer
from devstack.postgres import PostgresCluster, postgres_bin
from devstack.processes import free_port, wait_for
from devstack.stack import ApiSession
from lm_common.api import ApiResponse, ApiUnreachable

# How long the API may take to book again once the standby was promoted: the pool's pre-ping
# drops the dead connections and libpq tries the next host (connect_timeout bounds each try).
FAILOVER_BOUND = 30.0
_job_ids = itertools.count(1)


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder the postgres user may enter (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="lm-test-db-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers() -> Iterator[list[PostgresCluster | ApiServer]]:
    """Whatever a test starts, stopped at the end in reverse order (API before database)."""
    started: list[PostgresCluster | ApiServer] = []
    yield started
    for server in reversed(started):
        server.stop()


def start_api(root: Path, name: str, database_url: str, servers: list) -> ApiServer:
    api = ApiServer(root / name, database_url, free_port(), workers=2)
    api.migrate()
    servers.append(api)
    api.start()
    return api


def admin_session(api: ApiServer) -> ApiSession:
    """An admin client; its client_id is also the cluster of the jobs it books."""
    session = ApiSession(api.url, api.create_client("admin", [ADMIN_PERMISSION]))
    session.fetch_token()
    return session


def make_pool(admin: ApiSession, total: int) -> int:
    """abaqus.abaqus with `total` tokens, reported just now by the admin's cluster; its id."""
    product = admin.call("POST", "/lm/products", json={"name": "abaqus"})
    configuration = admin.call(
        "POST",
        "/lm/configurations",
        json={
            "name": "abaqus",
            "cluster_client_id": admin.credentials["client_id"],
            "grace_time": 300,
            "type": "flexlm",
        },
    )
    admin.call(
        "POST",
        "/lm/license_servers",
        json={"config_id": configuration["id"], "host": "licserv1", "port": 27000},
    )
    feature = admin.call(
        "POST",
        "/lm/features",
        json={"name": "abaqus", "product_id": product["id"], "config_id": configuration["id"]},
    )
    admin.call(
        "PUT",
        "/lm/features/by_client_id",
        json=[{"product_name": "abaqus", "feature_name": "abaqus", "total": total, "used": 0}],
    )
    return feature["id"]


def book(admin: ApiSession, quantity: int = 1) -> tuple[str, ApiResponse]:
    """What a prolog posts for a new job: (its job id, the API's answer)."""
    job_id = str(next(_job_ids))
    answer = admin.request(
        "POST",
        "/lm/jobs",
        json={
            "slurm_job_id": job_id,
            "username": "alice",
            "lead_host": "node01",
            "bookings": [{"product_feature": "abaqus.abaqus", "quantity": quantity}],
        },
    )
    return job_id, answer


def booked_jobs(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT DISTINCT j.slurm_job_id FROM jobs j JOIN bookings b ON b.job_id = j.id"
        ).fetchall()
    return {job_id for (job_id,) in rows}


class Booker(threading.Thread):
    """Books one token per job without pause, like prologs of a busy cluster, and keeps every
    answer: a job answered 201 was granted and must survive whatever happens to the database."""

    def __init__(self, admin: ApiSession) -> None:
        super().__init__(daemon=True)
        self.admin = admin
        self.granted: list[str] = []
        self.statuses: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                job_id, answer = book(self.admin)
            except ApiUnreachable:
                self.statuses.append(0)  # no answer at all: not granted
                continue
            self.statuses.append(answer.status)
            if answer.status == 201:
                self.granted.append(job_id)


def test_api_follows_a_promoted_standby_and_loses_no_granted_booking(
    root: Path, servers: list
) -> None:
    primary = PostgresCluster(root / "primary", free_port())
    servers.append(primary)
    primary.ensure_running()
    primary.ensure_database("license_manager")
    standby = primary.start_standby(root / "standby", free_port())
    servers.append(standby)
    # Synchronous replication: a commit returns once the standby has it, so a crash of the
    # primary cannot lose a booking the API granted (docs/deploy.md, "Database failover").
    with psycopg.connect(primary.url(), autocommit=True) as connection:
        connection.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        connection.execute("SELECT pg_reload_conf()")
        wait_for(
            lambda: connection.execute(
                "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'"
            ).fetchone(),
            30,
            "the standby to replicate synchronously",
        )
    # The URL form admins write: libpq's host list, and only a writable server will do.
    database_url = (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
        "/license_manager?target_session_attrs=read-write&connect_timeout=3"
    )
    api = start_api(root, "api", database_url, servers)
    admin = admin_session(api)
    feature_id = make_pool(admin, total=1_000_000)
    before = [book(admin) for _ in range(5)]
    assert [answer.status for _, answer in before] == [201] * 5

    booker = Booker(admin)
    booker.start()
    wait_for(lambda: len(booker.granted) >= 10, 30, "bookings while the primary runs")
    primary.stop(mode="immediate")  # a crash: no shutdown checkpoint, no goodbye to clients

    # Until a writable server is back, the API says so: 503 JSON with Retry-After, never a 500.
    health = requests.get(f"{api.url}/lm/health", timeout=10)
    assert health.status_code == 503, health.text
    _, refused = book(admin)
    assert refused.status == 503, refused.body
    assert refused.body["message"].startswith("The database cannot be reached")
    assert refused.headers["retry-after"] == "5"

    standby.promote()
    wait_for(lambda: book(admin)[1].status == 201, FAILOVER_BOUND, "a booking after failover")
    granted_at_failover = len(booker.granted)
    wait_for(lambda: len(booker.granted) >= granted_at_failover + 10, 30, "bookings after it")
    booker.halt.set()
    booker.join(timeout=30)

    assert set(booker.statuses) <= {201, 503}, booker.statuses  # no 500, no dropped request
    survivors = booked_jobs(standby.url("license_manager"))
    granted = {job_id for job_id, _ in before} | set(booker.granted)
    assert granted <= survivors, f"granted bookings lost: {sorted(granted - survivors)}"
    feature = admin.call("GET", f"/lm/features/{feature_id}")
    assert feature["booked"] == len(survivors)


def test_a_restored_dump_serves_the_same_data_clients_and_tokens(
    postgres: PostgresCluster, root: Path, servers: list
) -> None:
    source_url = postgres.ensure_database("lm_backup_source")
    source = start_api(root, "source", source_url, servers)
    admin = admin_session(source)
    feature_id = make_pool(admin, total=10)
    job_id, granted = book(admin, quantity=6)
    assert granted.status == 201, granted.body
    token_before = admin.token

    # docs/deploy.md, "Backups": pg_dump's custom format, restored into a new, empty database.
    dump = root / "license_manager.dump"
    bindir = postgres_bin()
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-f", str(dump), source_url], check=True)
    source.stop()
    restored_url = postgres.ensure_database("lm_backup_restored")
    subprocess.run(
        [
            str(bindir / "pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "-d",
            restored_url,
            str(dump),
        ],
        check=True,
    )
    # Same public URL (the tokens' issuer), so the restored API is the same service.
    restored = ApiServer(root / "restored", restored_url, source.port, workers=2)
    restored.migrate()  # at head already: a no-op, as after a restore into the same release
    servers.append(restored)
    restored.start()

    assert admin.token == token_before
    feature = admin.call("GET", f"/lm/features/{feature_id}")  # the old token: same signing key
    assert (feature["total"], feature["booked"]) == (10, 6)
    jobs = admin.call("GET", "/lm/jobs")
    assert [job["slurm_job_id"] for job in jobs] == [job_id]
    ApiSession(restored.url, admin.credentials).fetch_token()  # the clients came back too
    # Admission goes on from the restored bookings: 4 of 10 are left.
    _, refused = book(admin, quantity=5)
    assert refused.status == 409, refused.body
    _, fits = book(admin, quantity=4)
    assert fits.status == 201, fits.body
