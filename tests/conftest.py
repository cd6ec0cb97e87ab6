"""Shared fixtures: a real, throw-away PostgreSQL cluster and the live API for the whole test
session, a real single-node Slurm; markers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.api import ApiClient
from backend import create_app
from backend.settings import Settings
from devstack.api import ApiServer
from devstack.postgres import PostgresCluster
from devstack.processes import free_port
from devstack.slurm import SlurmCluster
from lm_common.facts import ADMIN_PERMISSION
from tests.live_api import LiveApi, client_config


@contextmanager
def throwaway_postgres(prefix: str = "lm-test-pg-") -> Iterator[PostgresCluster]:
    """A PostgreSQL 15 server of our own (fsync off), stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    cluster = PostgresCluster(datadir=root / "data", port=free_port(), fast=True)
    cluster.ensure_running()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL server."""
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def database_url(postgres: PostgresCluster) -> str:
    """An empty database for the backend tests (migrations are applied by the app fixture)."""
    return postgres.ensure_database("lm_test")


@pytest.fixture(scope="session")
def api_server(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """The API under gunicorn on its own database for the session (tests.live_api)."""
    state_dir = tmp_path_factory.mktemp("lm-live-api")
    access_log = state_dir / "access.log"
    access_options = f"--access-logfile {access_log} --access-logformat '%(m)s %(U)s %(s)s'"
    server = ApiServer(
        state_dir=state_dir,
        database_url=postgres.ensure_database("lm_live_api"),
        port=free_port(),
        # Many tests log in within a minute from 127.0.0.1; tests/backend checks the limit.
        extra_env={"GUNICORN_CMD_ARGS": access_options, "LM_LOGIN_RATE_LIMIT": "1000 per minute"},
    )
    server.migrate()
    admin = server.create_client("tests-admin", [ADMIN_PERMISSION])
    server.start()
    try:
        yield LiveApi(
            server=server,
            app=create_app(
                Settings.from_env(database_url=server.database_url, public_url=server.url)
            ),
            access_log=access_log,
            state_dir=state_dir,
            admin=ApiClient(client_config(server.url, admin, state_dir / "admin-cache")),
        )
    finally:
        server.stop()


@pytest.fixture
def live_api(api_server: LiveApi) -> Iterator[LiveApi]:
    """The live API with an empty access log, emptied of every row the test made afterwards."""
    api_server.forget_requests()
    yield api_server
    api_server.empty()


# A test needing one of these fixtures (directly or through others) gets the marker, and every
# test in tests/e2e and tests/deploy gets that folder's (they start whole stacks, clusters or
# containers of their own), so that `-m unit` selects exactly the tests that need no PostgreSQL,
# Slurm or Ansible target.
MARKERS_OF_FIXTURE = {
    "postgres": ("postgres",),
    "slurm_cluster": ("slurm",),
    "whole_stack": ("e2e", "slurm", "postgres"),
}
MARKER_OF_FOLDER = {"e2e": "e2e", "deploy": "deploy"}
SERVICE_MARKERS = ("postgres", "slurm", "e2e", "deploy")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(MARKERS_OF_FIXTURE) & set(getattr(item, "fixturenames", ())):
            for marker in MARKERS_OF_FIXTURE[fixture]:
                item.add_marker(marker)
        folder = item.path.resolve().relative_to(TESTS).parts[0]
        if folder in MARKER_OF_FOLDER:
            item.add_marker(MARKER_OF_FOLDER[folder])
        if not any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
            item.add_marker("unit")


# Licenses of the session's Slurm cluster; tests that change them put them back.
SLURM_TEST_LICENSES = {"abaqus.abaqus@flexlm": 10, "ansys.cfd@rlm": 5}


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real single-node Slurm 22.05 (own munged, slurmctld, slurmd) for the whole session.

    Fails, never skips, when Slurm is missing: the error names the packages to install.
    """
    root = Path(tempfile.mkdtemp(prefix="lm-test-slurm-"))
    cluster = SlurmCluster(root=root, licenses=dict(SLURM_TEST_LICENSES))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
