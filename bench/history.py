"""Benchmark: what the usage history costs.

1. A usage report of 1,000 features (the agent's PUT /lm/features/by_client_id) with the history
   sample written, against the same report with the sample's write left out (in-process API on
   real PostgreSQL, median of REPORTS reports each).
2. Storage: one day of raw samples of 1,000 features reported every minute and one year of their
   hourly rollups, written into PostgreSQL and measured (rows, bytes with indexes), extrapolated
   to the retention defaults; the time `lm-backend history prune` takes to roll that day up.
3. Booking throughput (bench.booking's deployment and load: 2 gunicorn processes, wrk) before
   and after that year of hourly history is in the database: it must not fall by more than 10 %.

PostgreSQL is a throw-away cluster (fsync off) unless LM_BENCH_DATABASE_URL names a database.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
from flask_migrate import upgrade
from sqlalchemy import text

from backend import auth, create_app, history
from backend.extensions import db
from backend.settings import Settings
from bench.booking import DURATION_S, WARMUP_S, _database, _wrk, deployment

FEATURES = 1000
REPORTS = 15
CLUSTER = "bench-history"
YEAR_HOURS = 365 * 24
MAX_THROUGHPUT_DROP = 0.10
CHECKOUTS = [{"username": f"user{n}", "lead_host": f"node{n:03d}", "count": 1} for n in range(3)]


def _seed(features: int) -> None:
    """One configuration of CLUSTER with `features` features of one product (plain SQL: fast)."""
    statements = (
        "INSERT INTO configurations (name, cluster_client_id, grace_time, booking_max_age, type) "
        "VALUES ('history', :cluster, 60, 1800, 'flexlm')",
        "INSERT INTO license_servers (config_id, host, port) VALUES (1, 'lic1', 27000)",
        "INSERT INTO products (name) VALUES ('solver')",
        "INSERT INTO features (name, product_id, config_id, reserved, total, used) "
        "SELECT 'f' || n, 1, 1, 0, 100, 0 FROM generate_series(1, :features) AS n",
    )
    for statement in statements:
        db.session.execute(text(statement), {"cluster": CLUSTER, "features": features})
    db.session.commit()


def _report_ms(client: Any, headers: dict[str, str], sample: bool) -> float:
    report = [
        {
            "product_name": "solver",
            "feature_name": f"f{n}",
            "total": 100,
            "used": n % 100,
            "status": "ok",
            "interval": 60,
            "reservation": n % 7,
            "demand": n % 3,
            "checkouts": CHECKOUTS,
        }
        for n in range(1, FEATURES + 1)
    ]
    times = []
    for _ in range(REPORTS):
        started = time.perf_counter()
        if sample:
            answer = client.put("/lm/features/by_client_id", json=report, headers=headers)
        else:
            with mock.patch.object(history, "write_samples"):
                answer = client.put("/lm/features/by_client_id", json=report, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"report refused: {answer.status_code} {answer.get_data()!r}")
    return round(statistics.median(times), 1)


def _relation_bytes(table: str) -> int:
    return int(
        db.session.execute(
            text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
        ).scalar_one()
    )


def _fill_raw_day(start: datetime) -> None:
    """A day of one sample per feature per minute (the report's figures, a few checkouts)."""
    for hour in range(24):
        db.session.execute(
            text(
                "INSERT INTO usage_samples (feature_id, sampled_at, status, total, used, booked, "
                "reserved, reservation, demand, interval, checkouts) "
                "SELECT f, CAST(:hour AS timestamptz) + m * interval '1 minute', 'ok', 100, "
                "(f + m) % 100, m % 5, 0, m % 7, m % 3, 60, CAST(:checkouts AS jsonb) "
                "FROM generate_series(1, CAST(:features AS integer)) AS f, "
                "generate_series(0, 59) AS m"
            ),
            {
                "hour": start + timedelta(hours=hour),
                "features": FEATURES,
                "checkouts": json.dumps(CHECKOUTS),
            },
        )
        db.session.commit()


def _fill_hourly_year(end: datetime, feature_ids_from: int = 1) -> None:
    """A year of hourly rollups of FEATURES features, ending at `end`."""
    for month in range(12):
        db.session.execute(
            text(
                "INSERT INTO usage_hourly (feature_id, hour, samples, full_samples, "
                "failed_samples, total_min, total_max, used_min, used_mean, used_max, "
                "booked_min, booked_mean, booked_max, reserved_max, reservation_min, "
                "reservation_mean, reservation_max, demand_min, demand_mean, demand_max) "
                "SELECT f, CAST(:end AS timestamptz) - h * interval '1 hour', 60, h % 60, 0, "
                "100, 100, f % 50, 50.5, 50 + f % 50, 0, 2.5, 5, 0, 0, 3.1, 7, 0, 1.2, 3 "
                "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS f, "
                "generate_series(CAST(:h0 AS integer), CAST(:h1 AS integer)) AS h"
            ),
            {
                "end": end,
                "first": feature_ids_from,
                "last": feature_ids_from + FEATURES - 1,
                "h0": month * YEAR_HOURS // 12 + 1,
                "h1": (month + 1) * YEAR_HOURS // 12,
            },
        )
        db.session.commit()


def _report_and_storage(database_url: str) -> dict[str, Any]:
    app = create_app(Settings.from_env(database_url=database_url, log_level="WARNING"))
    with app.app_context():
        upgrade()
        _seed(FEATURES)
        headers = {
            "Authorization": "Bearer "
            + auth.issue_token(CLUSTER, ["license-manager:feature:update"])
        }
        client = app.test_client()
        _report_ms(client, headers, sample=True)  # warm-up: caches, prepared statements
        without = _report_ms(client, headers, sample=False)
        with_history = _report_ms(client, headers, sample=True)

        db.session.execute(text("TRUNCATE usage_samples"))
        db.session.commit()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        day_start = now - timedelta(days=1)
        started = time.perf_counter()
        _fill_raw_day(day_start)
        raw_fill_s = time.perf_counter() - started
        raw_rows = FEATURES * 24 * 60
        raw_bytes = _relation_bytes("usage_samples")
        started = time.perf_counter()
        _fill_hourly_year(day_start)
        hourly_fill_s = time.perf_counter() - started
        hourly_rows = FEATURES * YEAR_HOURS
        hourly_bytes = _relation_bytes("usage_hourly")
        started = time.perf_counter()
        pruned = history.prune(raw_days=14, hourly_days=730, now=now + timedelta(minutes=5))
        prune_s = time.perf_counter() - started

    raw_per_row = raw_bytes / raw_rows
    hourly_per_row = hourly_bytes / hourly_rows
    gib = 1024**3
    return {
        "report_of_1000_features_ms": {
            "median_without_history": without,
            "median_with_history": with_history,
            "overhead_ms": round(with_history - without, 1),
        },
        "storage": {
            "raw_bytes_per_sample_with_indexes": round(raw_per_row, 1),
            "hourly_bytes_per_row_with_indexes": round(hourly_per_row, 1),
            "raw_14_days_of_1000_features_per_minute_gib": round(
                raw_per_row * FEATURES * 14 * 1440 / gib, 2
            ),
            "hourly_1_year_of_1000_features_gib": round(hourly_per_row * hourly_rows / gib, 2),
            "hourly_2_years_gib": round(2 * hourly_per_row * hourly_rows / gib, 2),
            "raw_1_year_if_never_downsampled_gib": round(
                raw_per_row * FEATURES * 365 * 1440 / gib, 1
            ),
            "rows_per_year": {"raw": FEATURES * 365 * 1440, "hourly": hourly_rows},
        },
        "fill_seconds": {"raw_day": round(raw_fill_s, 1), "hourly_year": round(hourly_fill_s, 1)},
        "prune_rolling_up_a_day_s": round(prune_s, 1),
        "prune_result": None if pruned is None else pruned.__dict__,
    }


def _posts_per_s(deployed: Any, prefix: str) -> float:
    summaries = _wrk(deployed, DURATION_S, prefix)
    posts = sum(summary["requests"] for summary in summaries)
    seconds = max(summary["duration_us"] for summary in summaries) / 1e6
    return posts / seconds


def _booking_with_history(root: Path) -> dict[str, Any]:
    with deployment(root) as deployed:
        _wrk(deployed, WARMUP_S, "warmup")
        before = _posts_per_s(deployed, "before")
        app = create_app(Settings.from_env(database_url=deployed.database_url))
        with app.app_context():
            started = time.perf_counter()
            _fill_hourly_year(datetime.now(UTC), feature_ids_from=1000)
            filled_s = time.perf_counter() - started
        with psycopg.connect(deployed.database_url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
            connection.execute("DELETE FROM jobs")
        after = _posts_per_s(deployed, "after")
    return {
        "posts_per_s_without_history": round(before, 1),
        "posts_per_s_with_a_year_of_hourly_history": round(after, 1),
        "hourly_rows_present": FEATURES * YEAR_HOURS,
        "history_fill_s": round(filled_s, 1),
        "change_percent": round((after - before) * 100 / before, 1),
        "within_10_percent": after >= before * (1 - MAX_THROUGHPUT_DROP),
        "machine_load_average_1min": round(os.getloadavg()[0], 2),
    }


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lm-bench-history-"))
    os.chmod(root, 0o755)  # the postgres user must reach its data folder
    try:
        for part in ("report", "booking"):
            (root / part).mkdir()
        with ExitStack() as cleanup:
            report = _report_and_storage(_database(root / "report", cleanup))
        booking = _booking_with_history(root / "booking")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {**report, "booking": booking}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
