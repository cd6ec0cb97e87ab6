"""Migrations: upgrade an empty database to head, back down to empty, and match the models."""

import os
import subprocess

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from backend.extensions import db
from backend.settings import sqlalchemy_url
from devstack.processes import console_script

TABLES = {
    "configurations",
    "license_servers",
    "products",
    "features",
    "jobs",
    "bookings",
    "oauth_clients",
    "signing_keys",
    "license_failures",
    "people",
    "device_authorizations",
    "refresh_tokens",
    "reconcile_leases",
    "usage_samples",
    "usage_hourly",
    "history_state",
    "refusals",
    "refusal_counters",
    "job_refusals",
}


@pytest.fixture(scope="module")
def empty_database_url(postgres):
    return sqlalchemy_url(postgres.ensure_database("lm_migrations"))


def lm_backend_db(database_url: str, *args: str) -> None:
    """Run `lm-backend db ...` as an admin would, against `database_url`."""
    environment = {**os.environ, "LM_DATABASE_URL": database_url}
    result = subprocess.run(
        [console_script("lm-backend"), "db", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def tables(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def schema_differences(database_url: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), db.metadata)
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_models_and_downgrade_empties(empty_database_url):
    assert tables(empty_database_url) == set()

    lm_backend_db(empty_database_url, "upgrade")
    assert tables(empty_database_url) == TABLES
    assert schema_differences(empty_database_url) == []

    lm_backend_db(empty_database_url, "downgrade", "base")
    assert tables(empty_database_url) == set()

    # And up again: a downgrade leaves nothing behind that blocks the next upgrade.
    lm_backend_db(empty_database_url, "upgrade")
    assert schema_differences(empty_database_url) == []
