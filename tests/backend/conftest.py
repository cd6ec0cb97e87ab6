"""Backend fixtures: the real app on the session's PostgreSQL, emptied between tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from backend import auth, create_app
from backend.extensions import db, limiter
from backend.settings import Settings
from devstack.api import ApiServer
from devstack.processes import free_port
from tests.backend.catalog import Catalog

PUBLIC_URL = "http://lm.test"
# Rows the tests create: every table of the models, so a new table is emptied too; the built-in
# issuer's signing key survives so tokens stay valid.
KEPT_TABLES = {"signing_keys"}


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    application = create_app(Settings.from_env(database_url=database_url, public_url=PUBLIC_URL))
    application.config["TESTING"] = True
    with application.app_context():
        upgrade()
    yield application


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    yield app.test_client()
    limiter.reset()  # the login page's rate limit counts per address: each test starts afresh
    with app.app_context():
        db.session.remove()
        tables = sorted(set(db.metadata.tables) - KEPT_TABLES)
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture
def auth_headers(app: Flask) -> Callable[..., dict[str, str]]:
    """Headers with a token of the built-in issuer for a cluster and its permissions."""

    def make(*permissions: str, client_id: str = "cluster-a") -> dict[str, str]:
        with app.app_context():
            token = auth.issue_token(client_id, permissions or ("license-manager:admin",))
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def catalog(client: FlaskClient, auth_headers: Callable[..., dict[str, str]]) -> Catalog:
    """Create configurations, servers, products and features through the API as an admin."""
    return Catalog(client, auth_headers())


@contextmanager
def api_processes(
    database_url: str,
    state_dir: Path,
    count: int = 2,
    workers: int = 2,
    extra_env: Callable[[int], dict[str, str]] = lambda index: {},
) -> Iterator[list[str]]:
    """`count` gunicorn API processes on the tests' database, as their /lm URLs. LM_PUBLIC_URL is
    shared, so every one accepts the tests' tokens; `extra_env(index)` adds variables."""
    servers = [
        ApiServer(
            state_dir=state_dir / f"api{index}",
            database_url=database_url,
            port=free_port(),
            workers=workers,
            extra_env={"LM_PUBLIC_URL": PUBLIC_URL, **extra_env(index)},
        )
        for index in range(count)
    ]
    try:
        for server in servers:
            server.start()
        yield [f"{server.url}/lm" for server in servers]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def post_job(client, auth_headers):
    """POST a job of `cluster` booking {product_feature: quantity}; return the response."""

    def post(bookings: dict[str, int], slurm_job_id: str = "100", cluster: str = "cluster-a"):
        return client.post(
            "/lm/jobs",
            json={
                "slurm_job_id": slurm_job_id,
                "username": "user123",
                "lead_host": "node01",
                "bookings": [
                    {"product_feature": name, "quantity": quantity}
                    for name, quantity in bookings.items()
                ],
            },
            headers=auth_headers("license-manager:job:create", client_id=cluster),
        )

    return post
