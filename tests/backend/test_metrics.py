"""GET /lm/metrics: Prometheus text computed from the database, the same from every process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.extensions import db
from backend.metrics import METRIC_NAMES
from backend.models import Feature
from backend.settings import Settings
from tests.backend.conftest import PUBLIC_URL, api_processes
from tests.backend.pools import add_configuration
from tests.backend.test_usage_history import post_job, put_report

ABAQUS = "abaqus.abaqus"
READ_METRICS = "license-manager:metrics:read"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels (prometheus_client's own parser)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def of_feature(scrape, name, **labels):
    found = [
        value
        for (sample, sample_labels), value in scrape.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.fixture
def busy_pool(app, client, auth_headers) -> int:
    """A reported pool with a granted booking, a refusal, demand and a reservation."""
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10, "reserved": 1}})[ABAQUS]
    checkouts = [
        {"username": "alice", "lead_host": "node1", "count": 1},
        {"username": "alice", "lead_host": "node2", "count": 2},
        {"username": "bob", "lead_host": "pc7", "count": 1},
    ]
    answer = put_report(
        client, auth_headers, total=10, used=4, reservation=3, demand=7, checkouts=checkouts
    )
    assert answer.status_code == 200
    assert post_job(client, auth_headers, 4, job_id="1").status_code == 201
    assert post_job(client, auth_headers, 5, job_id="2").status_code == 409
    return feature_id


def test_metrics_need_the_metrics_permission(client, auth_headers):
    assert client.get("/lm/metrics").status_code == 401
    assert (
        client.get("/lm/metrics", headers=auth_headers("license-manager:feature:read")).status_code
        == 403
    )
    assert client.get("/lm/metrics", headers=auth_headers(READ_METRICS)).status_code == 200


def test_metrics_are_open_when_the_setting_says_so(database_url):
    app = create_app(
        Settings.from_env(database_url=database_url, public_url=PUBLIC_URL, metrics_open=True)
    )
    answer = app.test_client().get("/lm/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain; version=0.0.4")


def test_metrics_match_what_the_api_shows(client, auth_headers, busy_pool):
    scrape = samples(client.get("/lm/metrics", headers=auth_headers(READ_METRICS)).text)
    feature = client.get(f"/lm/features/{busy_pool}", headers=auth_headers()).json
    labels = {
        "cluster": "cluster-a",
        "product": "abaqus",
        "feature": "abaqus",
        "pool": "abaqus.abaqus@licserv1:27000",
        "server_type": "flexlm",
    }
    assert of_feature(scrape, "lm_feature_capacity", **labels) == feature["total"]
    for field in ("used", "booked", "reserved", "available"):
        assert of_feature(scrape, f"lm_feature_{field}", **labels) == feature[field], field
    assert feature["available"] == 1
    assert of_feature(scrape, "lm_feature_reservation", **labels) == 3
    assert of_feature(scrape, "lm_feature_demand", **labels) == 7
    assert of_feature(scrape, "lm_feature_report_status", status="ok", **labels) == 1
    assert of_feature(scrape, "lm_feature_report_status", status="unreachable", **labels) == 0
    assert of_feature(scrape, "lm_feature_checkouts", username="alice", **labels) == 3
    assert of_feature(scrape, "lm_feature_checkouts", username="bob", **labels) == 1
    assert of_feature(scrape, "lm_bookings_granted_total", **labels) == 1
    assert of_feature(scrape, "lm_licenses_granted_total", **labels) == 4
    assert of_feature(scrape, "lm_refusals_total", reason="insufficient") == 1
    assert 0 <= of_feature(scrape, "lm_feature_report_age_seconds", **labels) < 60
    assert 0 <= of_feature(scrape, "lm_agent_report_age_seconds", cluster="cluster-a") < 60
    exported = {
        family.name
        for family in text_string_to_metric_families(
            client.get("/lm/metrics", headers=auth_headers(READ_METRICS)).text
        )
    }
    # Every name the dashboard and rules may use is exported (the latency histogram only in
    # multiprocess mode, checked below), counters by their family name.
    expected = {name.removesuffix("_total") for name in METRIC_NAMES}
    assert expected - exported == {"lm_api_request_duration_seconds"}


@pytest.fixture
def two_apis(app, database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn API processes of two workers, in prometheus_client's multiprocess mode."""

    def multiprocess_dir(index: int) -> dict[str, str]:
        directory = tmp_path / f"prometheus{index}"
        directory.mkdir()
        return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}

    with api_processes(database_url, tmp_path, extra_env=multiprocess_dir) as urls:
        yield urls


def test_two_api_processes_answer_the_same(auth_headers, busy_pool, two_apis):
    headers = auth_headers(READ_METRICS)
    for url in two_apis:
        for _ in range(4):  # spread over both workers
            assert requests.get(f"{url}/features", headers=auth_headers(), timeout=10).ok
    scrapes = [
        samples(requests.get(f"{url}/metrics", headers=headers, timeout=10).text)
        for url in two_apis
    ]

    def from_database(scrape):
        return {
            key: value
            for key, value in scrape.items()
            if not key[0].startswith("lm_api_") and "age_seconds" not in key[0]
        }

    assert from_database(scrapes[0]) == from_database(scrapes[1])
    assert of_feature(scrapes[0], "lm_licenses_granted_total", feature="abaqus") == 4
    # Latency: every worker's requests of this process, summed (multiprocess mode).
    listed = of_feature(
        scrapes[0],
        "lm_api_request_duration_seconds_count",
        endpoint="/lm/features",
        method="GET",
    )
    assert listed == 4


def test_the_expiry_date_the_server_printed_is_kept_and_exported(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    assert (
        put_report(client, auth_headers, total=10, used=0, expires="2027-03-31").status_code == 200
    )
    assert put_report(client, auth_headers, total=10, used=0).status_code == 200  # none printed
    with app.app_context():
        assert db.session.get(Feature, feature_id).license_expires == date(2027, 3, 31)
    scrape = samples(client.get("/lm/metrics", headers=auth_headers(READ_METRICS)).text)
    expiry = of_feature(scrape, "lm_feature_license_expiry_timestamp_seconds", feature="abaqus")
    assert expiry == datetime(2027, 3, 31, tzinfo=UTC).timestamp()

    # A license that never expires (9999-12-31) has no expiry to alert on.
    assert (
        put_report(client, auth_headers, total=10, used=0, expires="9999-12-31").status_code == 200
    )
    scrape = samples(client.get("/lm/metrics", headers=auth_headers(READ_METRICS)).text)
    assert not [key for key in scrape if key[0] == "lm_feature_license_expiry_timestamp_seconds"]
    assert put_report(client, auth_headers, total=10, used=0, expires="soon").status_code == 422
