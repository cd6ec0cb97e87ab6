"""Prometheus metrics computed from the database when scraped, and the request-latency histogram.

Labels of per-feature series: cluster, product, feature, pool (product.feature@the pool's first
license server, the same on every cluster sharing it) and server_type. The metric names are
listed in METRIC_NAMES: the Grafana dashboard and the alert rules are tested against them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text

from backend import booking
from backend.booking import booked_on_pools
from backend.extensions import db
from lm_common.facts import REFUSAL_REASONS, REPORT_STATUSES

FEATURE_LABELS = ("cluster", "product", "feature", "pool", "server_type")

FEATURES_SQL = text(
    """
SELECT features.id, configurations.cluster_client_id AS cluster, products.name AS product,
    features.name AS feature, configurations.type AS server_type,
    lower(products.name) || '.' || lower(features.name) AS product_feature,
    features.total, features.used, features.reserved, features.report_status,
    EXTRACT(EPOCH FROM now() - features.reported_at) AS report_age,
    features.bookings_granted, features.licenses_granted,
    EXTRACT(EPOCH FROM CAST(NULLIF(features.license_expires, DATE '9999-12-31') AS timestamp)
        AT TIME ZONE 'UTC')
        AS license_expiry,
    latest.reservation, latest.demand, latest.checkouts
FROM features
JOIN configurations ON configurations.id = features.config_id
JOIN products ON products.id = features.product_id
LEFT JOIN LATERAL (
    SELECT reservation, demand, checkouts FROM usage_samples
    WHERE usage_samples.feature_id = features.id
    ORDER BY sampled_at DESC LIMIT 1
) latest ON true
ORDER BY features.id
"""
)
# The first license server (lowercase host:port) of each feature's pool: the same for every
# cluster sharing the pool, so it names the pool.
POOL_SERVER_SQL = text(
    booking.POOL_MEMBERS_SQL
    + """
SELECT pool.feature_id, min(lower(servers.host) || ':' || servers.port)
FROM pool
JOIN features member ON member.id = pool.member_id
JOIN license_servers servers ON servers.config_id = member.config_id
GROUP BY pool.feature_id
"""
)

REFUSALS_SQL = text(
    "SELECT cluster_client_id, product_feature, reason, count FROM refusal_counters "
    "ORDER BY cluster_client_id, product_feature, reason"
)
REQUEUES_SQL = text(
    "SELECT cluster_client_id, feature, count(*) FROM license_failures "
    "WHERE action = 'requeued' GROUP BY cluster_client_id, feature ORDER BY 1, 2"
)
AGENTS_SQL = text(
    "SELECT configurations.cluster_client_id, "
    "EXTRACT(EPOCH FROM now() - max(features.reported_at)) FROM configurations "
    "JOIN features ON features.config_id = configurations.id "
    "WHERE features.reported_at IS NOT NULL GROUP BY 1 ORDER BY 1"
)

# name -> (kind, help); the gauges per feature are read from FEATURES_SQL's columns.
FEATURE_GAUGES = {
    # The pool's total (not `_total`: Prometheus keeps that suffix for counters).
    "lm_feature_capacity": "Licenses on the license server (total), as last reported",
    "lm_feature_used": "Licenses in use on the license server, as last reported",
    "lm_feature_booked": "Licenses booked by every cluster on the pool",
    "lm_feature_reserved": "Licenses kept for desktops (the feature's reserved)",
    "lm_feature_available": "max(0, total - used - reserved - booked): what a job may book",
    "lm_feature_reservation": "Licenses the cluster's Slurm reservation held at its last report",
    "lm_feature_demand": "Licenses wanted by the cluster's jobs pending for licenses",
    "lm_feature_report_age_seconds": "Seconds since the feature's last usage report",
    "lm_feature_license_expiry_timestamp_seconds": "When the license expires (Unix time, the "
    "date the server printed; absent when it printed none or never expires)",
}
METRIC_NAMES: tuple[str, ...] = (
    *FEATURE_GAUGES,
    "lm_feature_report_status",
    "lm_feature_checkouts",
    "lm_bookings_granted_total",
    "lm_licenses_granted_total",
    "lm_refusals_total",
    "lm_license_failure_requeues_total",
    "lm_agent_report_age_seconds",
    "lm_api_request_duration_seconds",
)


class DatabaseCollector(Collector):
    """Everything but request latency, read from PostgreSQL at each scrape."""

    def collect(self) -> Iterator[Metric]:
        rows = db.session.execute(FEATURES_SQL).all()
        ids = [row.id for row in rows]
        booked = booked_on_pools(ids)
        servers: dict[int, str] = dict(
            db.session.execute(POOL_SERVER_SQL, {"feature_ids": ids}).all()
        )
        gauges = {
            name: GaugeMetricFamily(name, help_text, labels=FEATURE_LABELS)
            for name, help_text in FEATURE_GAUGES.items()
        }
        status = GaugeMetricFamily(
            "lm_feature_report_status",
            "1 for the status of the feature's last report (ok, unreachable, unparsable)",
            labels=(*FEATURE_LABELS, "status"),
        )
        held = GaugeMetricFamily(
            "lm_feature_checkouts",
            "Licenses each user held at the feature's last report (who holds what)",
            labels=(*FEATURE_LABELS, "username"),
        )
        granted = CounterMetricFamily(
            "lm_bookings_granted", "Bookings granted on the feature", labels=FEATURE_LABELS
        )
        licenses = CounterMetricFamily(
            "lm_licenses_granted", "Licenses granted on the feature", labels=FEATURE_LABELS
        )
        for row in rows:
            # A feature without servers yet is a pool of its own.
            pool = f"{row.product_feature}@{servers.get(row.id, f'feature-{row.id}')}"
            labels = [row.cluster, row.product, row.feature, pool, row.server_type]
            pool_booked = booked.get(row.id, 0)
            values: dict[str, Any] = {
                "lm_feature_capacity": row.total,
                "lm_feature_used": row.used,
                "lm_feature_booked": pool_booked,
                "lm_feature_reserved": row.reserved,
                "lm_feature_available": max(0, row.total - row.used - row.reserved - pool_booked),
                "lm_feature_reservation": row.reservation,
                "lm_feature_demand": row.demand,
                "lm_feature_report_age_seconds": row.report_age,
                "lm_feature_license_expiry_timestamp_seconds": row.license_expiry,
            }
            for name, value in values.items():
                if value is not None:
                    gauges[name].add_metric(labels, float(value))
            if row.report_status is not None:
                for state in REPORT_STATUSES:
                    status.add_metric([*labels, state], float(row.report_status == state))
            for username, count in _by_user(row.checkouts or ()).items():
                held.add_metric([*labels, username], float(count))
            granted.add_metric(labels, float(row.bookings_granted))
            licenses.add_metric(labels, float(row.licenses_granted))
        yield from gauges.values()
        yield from (status, held, granted, licenses)
        refusals = CounterMetricFamily(
            "lm_refusals",
            f"Licenses refused to jobs, by reason ({', '.join(REFUSAL_REASONS)})",
            labels=("cluster", "product_feature", "reason"),
        )
        for cluster, product_feature, reason, count in db.session.execute(REFUSALS_SQL):
            refusals.add_metric([cluster, product_feature, reason], float(count))
        yield refusals
        requeues = CounterMetricFamily(
            "lm_license_failure_requeues",
            "Jobs the epilog requeued after they failed for lack of a license",
            labels=("cluster", "product_feature"),
        )
        for cluster, feature, count in db.session.execute(REQUEUES_SQL):
            requeues.add_metric([cluster, feature], float(count))
        yield requeues
        agents = GaugeMetricFamily(
            "lm_agent_report_age_seconds",
            "Seconds since the cluster's agent last reported any feature",
            labels=("cluster",),
        )
        for cluster, age in db.session.execute(AGENTS_SQL):
            agents.add_metric([cluster], float(age))
        yield agents
        db.session.rollback()  # read-only: end the transaction, hold nothing


def _by_user(checkouts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Licenses per user (hosts summed: one series per user keeps the label set small)."""
    held: dict[str, int] = {}
    for checkout in checkouts:
        held[checkout["username"]] = held.get(checkout["username"], 0) + checkout["count"]
    return held


def render(multiprocess_dir: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"


def measure_requests(app: Flask) -> None:
    """Observe each request's duration per endpoint (multiprocess mode only, see module doc)."""
    histogram = Histogram(
        "lm_api_request_duration_seconds",
        "API request duration per endpoint (URL rule) and method",
        ("endpoint", "method"),
        registry=None,  # multiprocess mode: values go to files, summed at scrape time
    )

    @app.before_request
    def start_timer() -> None:
        g.lm_request_started = time.perf_counter()

    @app.teardown_request
    def observe(_error: BaseException | None) -> None:
        started = g.pop("lm_request_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule else "unmatched"
            histogram.labels(rule, request.method).observe(time.perf_counter() - started)
