"""Shared fixtures: a real, throw-away PostgreSQL cluster for the whole test session."""

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
