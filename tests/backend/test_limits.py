"""Large requests get a clean, cheap answer: 413 before the body is read, 422 naming a list's
limit, and a usage report as large as the limit allows succeeds (no PostgreSQL stack overflow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from backend import create_app
from backend.extensions import db
from backend.resources.features.schemas import MAX_REPORT_ENTRIES
from backend.resources.jobs.schemas import MAX_BOOKINGS_PER_JOB
from backend.settings import Settings
from tests.backend.conftest import PUBLIC_URL, api_processes

FEATURES_SQL = [
    "INSERT INTO configurations (name, cluster_client_id, grace_time, type) "
    "VALUES ('big', 'cluster-a', 60, 'flexlm')",
    "INSERT INTO products (name) VALUES ('abaqus')",
    "INSERT INTO features (name, product_id, config_id, reserved, total, used) "
    "SELECT 'f' || n, (SELECT id FROM products), (SELECT id FROM configurations), 0, 0, 0 "
    "FROM generate_series(1, :count) AS n",
]


@pytest.fixture
def roomy(database_url: str, app: Flask, client: FlaskClient) -> FlaskClient:
    """The app with a body limit large enough for reports beyond the entry limit."""
    settings = Settings.from_env(
        database_url=database_url, public_url=PUBLIC_URL, max_body_bytes=16 * 1024 * 1024
    )
    return create_app(settings).test_client()


def usage_report(count: int) -> list[dict[str, object]]:
    return [
        {"product_name": "ABAQUS", "feature_name": f"F{n}", "total": 5, "used": 1}
        for n in range(1, count + 1)
    ]


def test_a_usage_report_of_the_largest_allowed_size_succeeds(app, roomy, auth_headers):
    """About 7,750 entries used to exceed PostgreSQL's stack depth (a 500)."""
    with app.app_context():
        for statement in FEATURES_SQL:
            db.session.execute(text(statement), {"count": MAX_REPORT_ENTRIES})
        db.session.commit()
    headers = auth_headers("license-manager:feature:update")
    answer = roomy.put(
        "/lm/features/by_client_id", json=usage_report(MAX_REPORT_ENTRIES), headers=headers
    )
    assert answer.status_code == 200, answer.get_data()[:300]
    assert len(answer.json) == MAX_REPORT_ENTRIES
    assert {(f["total"], f["used"], f["report_status"]) for f in answer.json} == {(5, 1, "ok")}


@pytest.mark.parametrize("count", [MAX_REPORT_ENTRIES + 1, 30_000])
def test_a_usage_report_beyond_the_limit_is_422_naming_it(roomy, auth_headers, count):
    headers = auth_headers("license-manager:feature:update")
    answer = roomy.put("/lm/features/by_client_id", json=usage_report(count), headers=headers)
    assert answer.status_code == 422
    assert f"At most {MAX_REPORT_ENTRIES} entries per usage report" in answer.json["message"]


def test_bookings_beyond_the_limit_are_422_naming_it(client, auth_headers):
    bookings = [{"product_feature": f"a.f{n}", "quantity": 1} for n in range(101)]
    answer = client.post(
        "/lm/jobs",
        json={"slurm_job_id": "1", "username": "u", "lead_host": "h", "bookings": bookings},
        headers=auth_headers(),
    )
    assert answer.status_code == 422
    assert f"At most {MAX_BOOKINGS_PER_JOB} bookings per job" in answer.json["message"]


@pytest.fixture
def api(app, client, database_url: str, tmp_path: Path) -> Iterator[str]:
    small = {"LM_MAX_BODY_BYTES": "65536"}
    with api_processes(database_url, tmp_path, count=1, extra_env=lambda _: small) as [url]:
        yield url


def test_gunicorn_refuses_a_body_over_the_limit_before_reading_it(api, auth_headers):
    """The answer comes at once from the announced length: the 50 MB are never sent."""
    body = json.dumps(usage_report(20)).encode()

    def chunks() -> Iterator[bytes]:
        yield body
        yield b" " * (50 * 1024 * 1024)

    headers = {"Content-Type": "application/json", **auth_headers()}
    announced = requests.put(
        f"{api}/features/by_client_id", data=b" " * 70_000, headers=headers, timeout=30
    )
    assert announced.status_code == 413
    assert announced.json()["code"] == 413
    assert "LM_MAX_BODY_BYTES" in announced.json()["message"]
    # Chunked (no Content-Length) is refused at once, not cut silently at the limit.
    streamed = requests.post(f"{api}/products", data=chunks(), headers=headers, timeout=60)
    assert streamed.status_code == 411
    assert "Content-Length" in streamed.json()["message"]
