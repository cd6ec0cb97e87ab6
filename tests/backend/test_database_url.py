"""LM_DATABASE_URL: every form libpq documents reaches psycopg with the same meaning."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from backend.settings import sqlalchemy_url


def connect_arguments(url: str) -> dict[str, str]:
    """What SQLAlchemy hands to psycopg.connect() for the backend's URL."""
    engine = create_engine(sqlalchemy_url(url))
    _, arguments = engine.dialect.create_connect_args(engine.url)
    return {name: value for name, value in arguments.items() if name != "context"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://lm:p%40ss@db1.example.org:5432,db2.example.org:5433/license_manager"
            "?target_session_attrs=read-write&connect_timeout=3",
            {
                "user": "lm",
                "password": "p@ss",
                "host": "db1.example.org,db2.example.org",
                "port": "5432,5433",
                "dbname": "license_manager",
                "target_session_attrs": "read-write",
                "connect_timeout": "3",
            },
        ),
        (  # ports may be left out (libpq's default), IPv6 addresses are bracketed
            "postgres://lm@[fd00::1]:6432,db2/license_manager?sslmode=verify-full",
            {
                "user": "lm",
                "host": "fd00::1,db2",
                "port": "6432,",
                "dbname": "license_manager",
                "sslmode": "verify-full",
            },
        ),
        (  # the query form SQLAlchemy documents is kept as it is
            "postgresql://lm@/license_manager?host=db1,db2&port=5432,5432",
            {"user": "lm", "host": "db1,db2", "port": "5432,5432", "dbname": "license_manager"},
        ),
        (
            "postgresql://lm:secret@db.example.org/license_manager?sslrootcert=/etc/ssl/db-ca.pem",
            {
                "user": "lm",
                "password": "secret",
                "host": "db.example.org",
                "dbname": "license_manager",
                "sslrootcert": "/etc/ssl/db-ca.pem",
            },
        ),
        (  # the Ansible role's local database: Unix socket, peer authentication
            "postgresql://license-manager@/license_manager?host=/var/run/postgresql",
            {"user": "license-manager", "host": "/var/run/postgresql", "dbname": "license_manager"},
        ),
    ],
)
def test_database_url_forms_reach_psycopg_unchanged_in_meaning(
    url: str, expected: dict[str, str]
) -> None:
    assert connect_arguments(url) == expected


def test_the_shipped_driver_is_named_for_every_postgresql_scheme() -> None:
    assert sqlalchemy_url("postgres://h/db").startswith("postgresql+psycopg://")
    assert sqlalchemy_url("postgresql://a,b/db").startswith("postgresql+psycopg://")
    assert sqlalchemy_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
