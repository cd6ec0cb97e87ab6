"""Usage history: samples of real reports, refusals, rollups and pruning, series endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from backend import history
from backend.extensions import db
from tests.backend.pools import add_configuration

ABAQUS = "abaqus.abaqus"
SHARED = [("licserv1", 27000)]
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def put_report(client, auth_headers, cluster="cluster-a", **fields):
    report = {"product_name": "abaqus", "feature_name": "abaqus", "interval": 60, **fields}
    return client.put(
        "/lm/features/by_client_id",
        json=[report],
        headers=auth_headers("license-manager:feature:update", client_id=cluster),
    )


def post_job(client, auth_headers, quantity, job_id="1", cluster="cluster-a"):
    return client.post(
        "/lm/jobs",
        json={
            "slurm_job_id": job_id,
            "username": "user123",
            "lead_host": "node01",
            "bookings": [{"product_feature": ABAQUS, "quantity": quantity}],
        },
        headers=auth_headers("license-manager:job:create", client_id=cluster),
    )


def add_samples(app, feature_id, times, **figures):
    """Samples as reports at `times` would have written them (history of the past)."""
    values = {"status": "ok", "total": 10, "used": 0, "booked": 0, "reserved": 0, **figures}
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO usage_samples (feature_id, sampled_at, status, total, used, booked, "
                "reserved, demand, reservation) VALUES (:feature_id, :at, :status, :total, :used, "
                ":booked, :reserved, :demand, :reservation)"
            ),
            [
                {"feature_id": feature_id, "at": at, "demand": None, "reservation": None, **values}
                for at in times
            ],
        )
        db.session.commit()


def minutes(start, count):
    return [start + timedelta(minutes=index) for index in range(count)]


def rows(app, sql, **parameters):
    with app.app_context():
        return db.session.execute(text(sql), parameters).all()


def test_every_report_is_kept_with_its_checkouts_reservation_and_demand(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10, "reserved": 1}})[ABAQUS]
    assert post_job(client, auth_headers, 2).status_code == 201
    checkouts = [{"username": "alice", "lead_host": "node07", "count": 3}]
    answer = put_report(
        client,
        auth_headers,
        total=10,
        used=3,
        checkouts=checkouts,
        reservation=4,
        demand=6,
    )
    assert answer.status_code == 200, answer.json
    assert put_report(client, auth_headers, status="unreachable").status_code == 200

    samples = rows(
        app,
        "SELECT status, total, used, booked, reserved, reservation, demand, interval, checkouts "
        "FROM usage_samples WHERE feature_id = :id ORDER BY sampled_at",
        id=feature_id,
    )
    assert [tuple(sample) for sample in samples] == [
        ("ok", 10, 3, 2, 1, 4, 6, 60, checkouts),
        ("unreachable", 10, 3, 2, 1, None, None, 60, None),
    ]
    # Who holds it now: the last report that read the server.
    held = client.get(f"/lm/features/{feature_id}/checkouts", headers=auth_headers())
    assert held.status_code == 200
    assert held.json["checkouts"] == checkouts


def test_a_report_with_bad_checkouts_is_422_and_writes_nothing(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    answer = put_report(
        client, auth_headers, total=10, used=1, checkouts=[{"username": "x", "count": -1}]
    )
    assert answer.status_code == 422
    assert rows(app, "SELECT * FROM usage_samples WHERE feature_id = :id", id=feature_id) == []


def test_checkouts_of_a_feature_never_read_are_empty_and_unknown_is_404(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    held = client.get(f"/lm/features/{feature_id}/checkouts", headers=auth_headers())
    assert held.json == {"feature_id": feature_id, "sampled_at": None, "checkouts": []}
    assert client.get("/lm/features/999/checkouts", headers=auth_headers()).status_code == 404


def test_refusals_and_grants_are_counted(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 5, "used": 1}})[ABAQUS]
    assert post_job(client, auth_headers, 3, job_id="1").status_code == 201
    refused = post_job(client, auth_headers, 2, job_id="2")
    assert refused.status_code == 409
    assert refused.json["errors"] == {ABAQUS: {"requested": 2, "available": 1}}

    assert rows(
        app,
        "SELECT cluster_client_id, feature_id, product_feature, requested, available, reason "
        "FROM refusals",
    ) == [("cluster-a", feature_id, ABAQUS, 2, 1, "insufficient")]
    assert rows(app, "SELECT reason, count FROM refusal_counters") == [("insufficient", 1)]
    assert rows(app, "SELECT bookings_granted, licenses_granted FROM features") == [(1, 3)]


def test_usage_series_of_raw_samples(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    start = NOW - timedelta(hours=2)
    add_samples(app, feature_id, minutes(start, 30), used=4, demand=2)
    add_samples(app, feature_id, minutes(start + timedelta(minutes=30), 30), used=10, demand=5)

    answer = client.get(
        f"/lm/features/{feature_id}/usage",
        query_string={
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "step": "30m",
        },
        headers=auth_headers("license-manager:feature:read"),
    )
    assert answer.status_code == 200, answer.json
    points = answer.json["points"]
    assert [(p["used"], p["demand"], p["samples"], p["full_fraction"]) for p in points] == [
        (4, 2, 30, 0.0),
        (10, 5, 30, 1.0),
    ]
    assert answer.json["summary"]["peak_used"] == 10
    assert answer.json["summary"]["hours_at_100_percent"] == 0.5
    assert answer.json["summary"]["unmet_demand_license_hours"] == 3.5


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "after start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "after start"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "step": "60"}, "points"),
        ({"step": "0"}, "at least 1 second"),
        ({"step": "soon"}, "duration"),
        ({"step": "-5m"}, "duration"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_ranges_and_steps_are_422(app, client, auth_headers, query, problem):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    for path in ("usage", "pool/usage"):
        answer = client.get(
            f"/lm/features/{feature_id}/{path}", query_string=query, headers=auth_headers()
        )
        assert answer.status_code == 422, answer.json
        assert problem in str(answer.json)


def test_prune_rolls_hours_up_then_deletes_past_retention(app, client, auth_headers):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})[ABAQUS]
    old_hour = (NOW - timedelta(days=20)).replace(minute=0)
    add_samples(app, feature_id, minutes(old_hour, 20), used=2)
    add_samples(app, feature_id, minutes(old_hour + timedelta(minutes=20), 40), used=8)
    ancient = (NOW - timedelta(days=800)).replace(minute=0)
    recent = NOW - timedelta(hours=3)
    add_samples(app, feature_id, minutes(recent, 10), used=5)
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO usage_hourly (feature_id, hour, samples, full_samples, "
                "failed_samples, total_min, total_max, used_min, used_mean, used_max, booked_min, "
                "booked_mean, booked_max, reserved_max) "
                "VALUES (:id, :hour, 1, 0, 0, 10, 10, 1, 1, 1, 0, 0, 0, 0)"
            ),
            {"id": feature_id, "hour": ancient},
        )
        db.session.commit()
        result = history.prune(raw_days=14, hourly_days=730, now=NOW)
        again = history.prune(raw_days=14, hourly_days=730, now=NOW)

    assert result.samples_deleted == 60
    assert result.hours_deleted == 1
    assert again.samples_deleted == 0 and again.hours_rolled_up == 0
    hours = rows(
        app,
        "SELECT hour, samples, used_min, used_mean, used_max FROM usage_hourly ORDER BY hour",
    )
    assert [tuple(hour) for hour in hours] == [
        (old_hour, 60, 2, pytest.approx(6.0), 8),
        (recent.replace(minute=0), 10, 5, 5.0, 5),
    ]
    assert len(rows(app, "SELECT * FROM usage_samples")) == 10  # recent ones kept raw

    # A range over pruned raw data reads the hours, whatever the step.
    for step in ("1h", "30m"):
        answer = client.get(
            f"/lm/features/{feature_id}/usage",
            query_string={
                "start": old_hour.isoformat(),
                "end": (old_hour + timedelta(hours=1)).isoformat(),
                "step": step,
            },
            headers=auth_headers(),
        )
        assert answer.status_code == 200
        assert answer.json["points"][0]["used"] == 8
        assert answer.json["points"][0]["samples"] == 60


def test_pool_series_adds_every_clusters_demand_and_refusals(app, client, auth_headers):
    ids = [
        add_configuration(app, cluster, {ABAQUS: {"total": 4, "used": 4}}, SHARED)[ABAQUS]
        for cluster in ("cluster-a", "cluster-b")
    ]
    start = datetime.now(UTC) - timedelta(minutes=30)  # the refusal happens now
    add_samples(app, ids[0], minutes(start, 10), used=4, total=4, demand=3)
    add_samples(app, ids[1], minutes(start, 10), used=4, total=4, demand=2)
    assert post_job(client, auth_headers, 1, cluster="cluster-b").status_code == 409

    query = {
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "step": "1h",
    }
    pool = client.get(
        f"/lm/features/{ids[0]}/pool/usage", query_string=query, headers=auth_headers()
    ).json
    own = client.get(
        f"/lm/features/{ids[0]}/usage", query_string=query, headers=auth_headers()
    ).json
    assert pool["feature_ids"] == ids
    assert (pool["points"][0]["used"], pool["points"][0]["demand"]) == (4, 5)
    assert pool["points"][0]["refusals"] == 1
    assert (own["points"][0]["demand"], own["points"][0]["refusals"]) == (3, 0)
    assert pool["summary"]["hours_at_100_percent"] == pytest.approx(1.0)
