"""Shared fixtures: a real, throw-away PostgreSQL cluster for the whole test session; markers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.postgres import PostgresCluster
from devstack.processes import free_port
from devstack.slurm import SlurmCluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL 15 server of our own (fsync off), stopped and removed after the session."""
    root = Path(tempfile.mkdtemp(prefix="lm-test-pg-"))
    os.chmod(root, 0o755)
    cluster = PostgresCluster(datadir=root / "data", port=free_port(), fast=True)
    cluster.ensure_running()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres: PostgresCluster) -> str:
    """An empty database for the backend tests (migrations are applied by the app fixture)."""
    return postgres.ensure_database("lm_test")


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
