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
    "token_attempts",
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


def run_sql(database_url: str, statements: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            result = connection.exec_driver_sql(statements)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


PRODUCTS_DIFFERING_IN_CASE = """
INSERT INTO configurations (id, name, cluster_client_id, grace_time, type)
    VALUES (1, 'a', 'cluster-a', 60, 'flexlm'), (2, 'b', 'cluster-b', 60, 'flexlm');
INSERT INTO products (id, name) VALUES (1, 'abaqus'), (2, 'ABAQUS'), (3, 'ansys');
INSERT INTO features (id, name, product_id, config_id, reserved, total, used)
    VALUES (1, 'cae', 1, 1, 0, 10, 0), (2, 'cae', 2, 2, 0, 10, 0), (3, 'cfd', 3, 2, 0, 5, 0);
"""


def test_upgrade_merges_products_that_differ_only_in_case(postgres):
    """A database from before the case-insensitive index keeps its features, on one product."""
    database_url = sqlalchemy_url(postgres.ensure_database("lm_migrations_products"))
    lm_backend_db(database_url, "downgrade", "base")
    lm_backend_db(database_url, "upgrade", "0001")
    run_sql(database_url, PRODUCTS_DIFFERING_IN_CASE)

    lm_backend_db(database_url, "upgrade")

    assert run_sql(database_url, "SELECT id, name FROM products ORDER BY id") == [
        (1, "abaqus"),
        (3, "ansys"),
    ]
    assert run_sql(database_url, "SELECT id, product_id FROM features ORDER BY id") == [
        (1, 1),
        (2, 1),
        (3, 3),
    ]
