"""Usage history: a sample per feature per usage report, refusals, granted counters, rollups.

Writes are small hooks in the paths that already run: the usage report (`write_samples`, in
the report's transaction, whose feature rows it already locks), job posting (`count_granted`
on rows the admission already locked; `record_refusals` in its own short transaction after
the refusal's rollback). Raw samples are kept LM_HISTORY_RAW_DAYS, then only as hourly
min/mean/max rows kept LM_HISTORY_HOURLY_DAYS: `lm-backend history prune` (run hourly from
cron) rolls complete hours up and deletes what is past retention in batches of short
transactions that never touch feature rows, so bookings are never blocked by it.

Series (`series`) are read by the API and by any Python caller (a dashboard).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import CursorResult, text

from backend import booking
from backend.extensions import db
from lm_common.facts import REPORT_OK

HOUR = 3600
PRUNE_BATCH = 10_000
# Two prune runs at once would only repeat work; the second leaves at once.
PRUNE_LOCK_KEY = 0x4C4D_4869  # "LMHi"
# Rows of the last hour are rolled up once this long has passed (reports still in flight).
ROLLUP_DELAY = timedelta(minutes=2)
# Prometheus' own limit on points in one range query.
MAX_POINTS = 11_000

# Samples of the reported features, with the booked count of their pools, in one statement.
INSERT_SAMPLES_SQL = text(
    """
INSERT INTO usage_samples (feature_id, sampled_at, status, total, used, booked, reserved,
    reservation, demand, interval, checkouts)
SELECT features.id, now(), features.report_status, features.total, features.used,
    sample.booked, features.reserved, sample.reservation, sample.demand, features.report_interval,
    CAST(sample.checkouts AS jsonb)
FROM unnest(CAST(:feature_ids AS integer[]), CAST(:booked AS bigint[]),
        CAST(:reservations AS bigint[]), CAST(:demands AS bigint[]), CAST(:checkouts AS text[]))
    AS sample(feature_id, booked, reservation, demand, checkouts)
JOIN features ON features.id = sample.feature_id
ON CONFLICT DO NOTHING
"""
)


def write_samples(
    features: Sequence[Any], reports: Mapping[int, Mapping[str, Any]], booked: Mapping[int, int]
) -> None:
    """Keep one sample per reported feature (flushed feature rows; `reports` by feature id)."""
    if not features:
        return
    db.session.flush()
    ids = [feature.id for feature in features]
    db.session.execute(
        INSERT_SAMPLES_SQL,
        {
            "feature_ids": ids,
            "booked": [booked.get(feature_id, 0) for feature_id in ids],
            "reservations": [reports[feature_id].get("reservation") for feature_id in ids],
            "demands": [reports[feature_id].get("demand") for feature_id in ids],
            "checkouts": [
                json.dumps(reports[feature_id]["checkouts"])
                if reports[feature_id].get("checkouts")
                else None
                for feature_id in ids
            ],
        },
    )


COUNT_GRANTED_SQL = text(
    """
UPDATE features SET bookings_granted = bookings_granted + 1,
    licenses_granted = licenses_granted + granted.quantity
FROM unnest(CAST(:feature_ids AS integer[]), CAST(:quantities AS bigint[]))
    AS granted(feature_id, quantity)
WHERE features.id = granted.feature_id
"""
)


def count_granted(quantities: Mapping[int, int]) -> None:
    """Count a job's granted bookings on their features (rows its admission holds locked)."""
    if quantities:
        ids = sorted(quantities)
        db.session.execute(
            COUNT_GRANTED_SQL,
            {"feature_ids": ids, "quantities": [quantities[feature_id] for feature_id in ids]},
        )


# The job's last refusal (why it waits, backend/why.py) replaces its earlier one; refusals of
# jobs that never came back (cancelled while pending) go after JOB_REFUSAL_KEEP.
JOB_REFUSAL_KEEP = timedelta(days=7)
RECORD_JOB_REFUSAL_SQL = text(
    """
INSERT INTO job_refusals (cluster_client_id, slurm_job_id, refused_at, wanted, reasons)
VALUES (:cluster, :slurm_job_id, now(), CAST(:wanted AS jsonb), CAST(:reasons AS jsonb))
ON CONFLICT (cluster_client_id, slurm_job_id) DO UPDATE SET
    refused_at = EXCLUDED.refused_at, wanted = EXCLUDED.wanted, reasons = EXCLUDED.reasons
"""
)


def record_refusals(
    cluster: str,
    errors: Mapping[str, Mapping[str, Any]],
    slurm_job_id: str,
    quantities: Mapping[int, int],
) -> None:
    """Keep each refused license of a job (the 409's `errors`) and, as the job's last refusal,
    what it wanted (feature id -> licenses) and why, in one short transaction of its own."""
    db.session.execute(
        text("DELETE FROM job_refusals WHERE refused_at < now() - :keep"),
        {"keep": JOB_REFUSAL_KEEP},
    )
    db.session.execute(
        RECORD_JOB_REFUSAL_SQL,
        {
            "cluster": cluster,
            "slurm_job_id": slurm_job_id,
            "wanted": json.dumps({str(fid): quantity for fid, quantity in quantities.items()}),
            "reasons": json.dumps(
                {
                    name: {key: value for key, value in shortage.items() if key != "feature_id"}
                    for name, shortage in errors.items()
                }
            ),
        },
    )
    rows = [
        {
            "cluster": cluster,
            "feature_id": shortage.get("feature_id"),
            "product_feature": name,
            "requested": shortage["requested"],
            "available": shortage.get("available"),
            "reason": shortage["code"],
            "detail": str(shortage.get("reason", "not enough licenses left")),
        }
        for name, shortage in errors.items()
    ]
    if not rows:
        db.session.commit()
        return
    db.session.execute(
        text(
            "INSERT INTO refusals (refused_at, cluster_client_id, feature_id, product_feature, "
            "requested, available, reason, detail) VALUES (now(), :cluster, :feature_id, "
            ":product_feature, :requested, :available, :reason, :detail)"
        ),
        rows,
    )
    db.session.execute(
        text(
            "INSERT INTO refusal_counters (cluster_client_id, product_feature, reason, count) "
            "VALUES (:cluster, :product_feature, :reason, 1) "
            "ON CONFLICT (cluster_client_id, product_feature, reason) "
            "DO UPDATE SET count = refusal_counters.count + 1"
        ),
        # One row per key and statement (executemany): a job repeats no license in `errors`.
        rows,
    )
    db.session.commit()


def latest_checkouts(feature_id: int) -> dict[str, Any] | None:
    """Who held the feature at its last report that read the server (None: no such report)."""
    row = db.session.execute(
        text(
            "SELECT sampled_at, checkouts FROM usage_samples WHERE feature_id = :id "
            "AND status = :ok ORDER BY sampled_at DESC LIMIT 1"
        ),
        {"id": feature_id, "ok": REPORT_OK},
    ).one_or_none()
    if row is None:
        return None
    return {"sampled_at": row.sampled_at, "checkouts": row.checkouts or []}


# ---------------------------------------------------------------------------------------------
# Rollup and pruning


ROLLUP_SQL = text(
    """
INSERT INTO usage_hourly (feature_id, hour, samples, full_samples, failed_samples,
    total_min, total_max, used_min, used_mean, used_max, booked_min, booked_mean, booked_max,
    reserved_max, reservation_min, reservation_mean, reservation_max,
    demand_min, demand_mean, demand_max)
SELECT feature_id, CAST(:hour AS timestamptz), count(*),
    count(*) FILTER (WHERE status = 'ok' AND total > 0 AND used + reserved + booked >= total),
    count(*) FILTER (WHERE status <> 'ok'),
    min(total), max(total), min(used), avg(used), max(used), min(booked), avg(booked),
    max(booked), max(reserved), min(reservation), avg(reservation), max(reservation),
    min(demand), avg(demand), max(demand)
FROM usage_samples
WHERE sampled_at >= :hour AND sampled_at < CAST(:hour AS timestamptz) + interval '1 hour'
GROUP BY feature_id
ON CONFLICT (feature_id, hour) DO UPDATE SET
    samples = EXCLUDED.samples, full_samples = EXCLUDED.full_samples,
    failed_samples = EXCLUDED.failed_samples, total_min = EXCLUDED.total_min,
    total_max = EXCLUDED.total_max, used_min = EXCLUDED.used_min,
    used_mean = EXCLUDED.used_mean, used_max = EXCLUDED.used_max,
    booked_min = EXCLUDED.booked_min, booked_mean = EXCLUDED.booked_mean,
    booked_max = EXCLUDED.booked_max, reserved_max = EXCLUDED.reserved_max,
    reservation_min = EXCLUDED.reservation_min, reservation_mean = EXCLUDED.reservation_mean,
    reservation_max = EXCLUDED.reservation_max, demand_min = EXCLUDED.demand_min,
    demand_mean = EXCLUDED.demand_mean, demand_max = EXCLUDED.demand_max
"""
)


@dataclass(frozen=True)
class PruneResult:
    hours_rolled_up: int
    samples_deleted: int
    hours_deleted: int
    refusals_deleted: int


def _state() -> tuple[datetime | None, datetime | None]:
    db.session.execute(text("INSERT INTO history_state (id) VALUES (1) ON CONFLICT DO NOTHING"))
    row = db.session.execute(
        text("SELECT rolled_until, pruned_until FROM history_state WHERE id = 1")
    ).one()
    db.session.commit()
    return row.rolled_until, row.pruned_until


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _delete_in_batches(table: str, column: str, before: datetime) -> int:
    """Delete rows older than `before`, PRUNE_BATCH per transaction; how many went."""
    deleted = 0
    statement = text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE {column} < :before LIMIT {PRUNE_BATCH}))"
    )
    while True:
        result: CursorResult[Any] = db.session.execute(statement, {"before": before})  # type: ignore[assignment]
        count = result.rowcount
        db.session.commit()
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


def prune(raw_days: int, hourly_days: int, now: datetime | None = None) -> PruneResult | None:
    """Roll complete hours up, then delete raw samples, hours and refusals past retention.

    Every step is its own short transaction; none locks a feature row. None when another
    prune holds the advisory lock.
    """
    now = now or datetime.now(UTC)
    if not db.session.execute(
        text("SELECT pg_try_advisory_lock(:key)"), {"key": PRUNE_LOCK_KEY}
    ).scalar():
        db.session.rollback()
        return None
    try:
        rolled_until, _ = _state()
        raw_cutoff = _hour_floor(now - timedelta(days=raw_days))
        hour = rolled_until or raw_cutoff
        if rolled_until is None:  # first run: start at the oldest sample still kept raw
            oldest = db.session.execute(text("SELECT min(sampled_at) FROM usage_samples")).scalar()
            hour = _hour_floor(oldest) if oldest else _hour_floor(now - ROLLUP_DELAY)
        last = _hour_floor(now - ROLLUP_DELAY)
        rolled = 0
        while hour < last:
            db.session.execute(ROLLUP_SQL, {"hour": hour})
            hour += timedelta(hours=1)
            db.session.execute(
                text("UPDATE history_state SET rolled_until = :hour WHERE id = 1"),
                {"hour": hour},
            )
            db.session.commit()
            rolled += 1
        # Never delete raw samples that are not rolled up yet.
        cutoff = min(raw_cutoff, hour)
        samples = _delete_in_batches("usage_samples", "sampled_at", cutoff)
        db.session.execute(
            text("UPDATE history_state SET pruned_until = :cutoff WHERE id = 1"), {"cutoff": cutoff}
        )
        db.session.commit()
        hourly_cutoff = now - timedelta(days=hourly_days)
        hours = _delete_in_batches("usage_hourly", "hour", hourly_cutoff)
        refusals = _delete_in_batches("refusals", "refused_at", hourly_cutoff)
        return PruneResult(rolled, samples, hours, refusals)
    finally:
        db.session.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PRUNE_LOCK_KEY})
        db.session.commit()


# ---------------------------------------------------------------------------------------------
# Series

SERIES_FIELDS = (
    "total",
    "used",
    "used_mean",
    "booked",
    "reserved",
    "reservation",
    "demand",
    "demand_mean",
    "full_fraction",
    "samples",
    "failed_samples",
)

# Per step and member feature: raw samples after `boundary`, hourly rows before it. Then per
# step across the pool's members: the server's figures (total: the least reported, used,
# booked, reserved: the most) are the pool's; demand and reservations are each cluster's own,
# so they add up.
SERIES_SQL = text(
    """
WITH points AS (
    SELECT feature_id, sampled_at AS t, 1 AS samples,
        CASE WHEN status = 'ok' AND total > 0 AND used + reserved + booked >= total
            THEN 1 ELSE 0 END AS full_samples,
        CASE WHEN status <> 'ok' THEN 1 ELSE 0 END AS failed_samples,
        total AS total_min, used AS used_max, CAST(used AS float) AS used_sum,
        booked AS booked_max, reserved AS reserved_max, reservation AS reservation_max,
        demand AS demand_max, CAST(demand AS float) AS demand_sum,
        CASE WHEN demand IS NULL THEN 0 ELSE 1 END AS demand_samples
    FROM usage_samples
    WHERE feature_id = ANY(:feature_ids) AND sampled_at >= GREATEST(:start, :boundary)
        AND sampled_at < :end
    UNION ALL
    SELECT feature_id, hour, samples, full_samples, failed_samples, total_min, used_max,
        used_mean * samples, booked_max, reserved_max, reservation_max, demand_max,
        demand_mean * samples, CASE WHEN demand_mean IS NULL THEN 0 ELSE samples END
    FROM usage_hourly
    WHERE feature_id = ANY(:feature_ids) AND hour >= :start AND hour < LEAST(:end, :boundary)
),
per_member AS (
    SELECT feature_id, CAST(floor(EXTRACT(EPOCH FROM t - :start) / :step) AS integer) AS step,
        sum(samples) AS samples, sum(full_samples) AS full_samples,
        sum(failed_samples) AS failed_samples, min(total_min) AS total, max(used_max) AS used,
        sum(used_sum) / sum(samples) AS used_mean, max(booked_max) AS booked,
        max(reserved_max) AS reserved, max(reservation_max) AS reservation,
        max(demand_max) AS demand, sum(demand_sum) / NULLIF(sum(demand_samples), 0) AS demand_mean
    FROM points GROUP BY feature_id, 2
)
SELECT step, min(total) AS total, max(used) AS used, max(used_mean) AS used_mean,
    max(booked) AS booked, max(reserved) AS reserved, sum(reservation) AS reservation,
    sum(demand) AS demand, sum(demand_mean) AS demand_mean,
    max(CAST(full_samples AS float) / samples) AS full_fraction,
    sum(samples) AS samples, sum(failed_samples) AS failed_samples
FROM per_member GROUP BY step ORDER BY step
"""
)

REFUSALS_SQL = text(
    """
SELECT CAST(floor(EXTRACT(EPOCH FROM refused_at - :start) / :step) AS integer) AS step,
    count(*) AS refusals, sum(requested) AS refused_licenses
FROM refusals
WHERE feature_id = ANY(:feature_ids) AND refused_at >= :start AND refused_at < :end
GROUP BY 1
"""
)

BOUNDARY_SQL = text("SELECT rolled_until, pruned_until FROM history_state WHERE id = 1")


def pool_members(feature_id: int) -> list[int]:
    """The features of `feature_id`'s pool (itself included), every cluster's."""
    statement = text(booking.POOL_MEMBERS_SQL + "SELECT member_id FROM pool ORDER BY member_id")
    return list(db.session.scalars(statement, {"feature_ids": [feature_id]}))


class SeriesRangeError(ValueError):
    """A range or step the API answers with 422."""


def check_range(start: datetime, end: datetime, step: int) -> None:
    if end <= start:
        raise SeriesRangeError("end must be after start")
    if step < 1:
        raise SeriesRangeError("step must be at least 1 second")
    points = math.ceil((end - start).total_seconds() / step)
    if points > MAX_POINTS:
        raise SeriesRangeError(
            f"{points} points asked (range / step); at most {MAX_POINTS}: use a larger step"
        )


def default_step(start: datetime, end: datetime) -> int:
    """About 500 points, never finer than a minute (reports come every minute at most)."""
    return max(60, math.ceil((end - start).total_seconds() / 500))


def series(
    feature_ids: Iterable[int], start: datetime, end: datetime, step: int
) -> list[dict[str, Any]]:
    """One point per step from `start` (steps without samples included, their figures None):
    the features' figures combined as a pool (one feature: its own), with refusals.

    A step a whole number of hours uses the hourly rollups wherever they exist (fast over
    years); a finer one uses raw samples wherever they are still kept.
    """
    check_range(start, end, step)
    ids = sorted(set(feature_ids))
    state = db.session.execute(BOUNDARY_SQL).one_or_none()
    rolled_until, pruned_until = state if state else (None, None)
    if step % HOUR == 0:
        boundary = rolled_until or datetime.min.replace(tzinfo=UTC)
    else:
        boundary = pruned_until or datetime.min.replace(tzinfo=UTC)
    parameters = {"feature_ids": ids, "start": start, "end": end, "step": step}
    rows = {
        row.step: row._asdict()
        for row in db.session.execute(SERIES_SQL, {**parameters, "boundary": boundary})
    }
    refused = {row.step: row for row in db.session.execute(REFUSALS_SQL, parameters)}
    points = []
    for index in range(math.ceil((end - start).total_seconds() / step)):
        row = rows.get(index, {})
        point: dict[str, Any] = {"time": start + timedelta(seconds=index * step)}
        for field in SERIES_FIELDS:
            value = row.get(field)
            point[field] = float(value) if isinstance(value, float) else value
        point["samples"] = int(row.get("samples") or 0)
        point["failed_samples"] = int(row.get("failed_samples") or 0)
        refusal = refused.get(index)
        point["refusals"] = int(refusal.refusals) if refusal else 0
        point["refused_licenses"] = int(refusal.refused_licenses) if refusal else 0
        points.append(point)
    return points


def summary(points: Sequence[Mapping[str, Any]], step: int) -> dict[str, Any]:
    """What a person asks of a period: peak use, time at 100 %, refusals, unmet demand."""
    read = [point for point in points if point["samples"]]
    return {
        "peak_used": max((point["used"] for point in read), default=None),
        "total": min((point["total"] for point in read), default=None),
        "hours_at_100_percent": round(
            sum((point["full_fraction"] or 0) * step for point in read) / HOUR, 2
        ),
        "refusals": sum(point["refusals"] for point in points),
        "refused_licenses": sum(point["refused_licenses"] for point in points),
        "peak_demand": max(
            (point["demand"] for point in read if point["demand"] is not None), default=None
        ),
        "unmet_demand_license_hours": round(
            sum((point["demand_mean"] or 0) * step for point in read) / HOUR, 2
        ),
    }


history_cli = AppGroup("history", help="Usage history: rollups and retention.")


@history_cli.command("prune")
def prune_command() -> None:
    """Roll complete hours up and delete history past retention (run it hourly from cron).

    Retention: LM_HISTORY_RAW_DAYS for raw samples, LM_HISTORY_HOURLY_DAYS for hours and
    refusals. Prints what it did as JSON; a run while another one works exits at once.
    """
    settings = current_app.config["LM_SETTINGS"]
    result = prune(settings.history_raw_days, settings.history_hourly_days)
    if result is None:
        click.echo(json.dumps({"skipped": "another prune is running"}))
        return
    click.echo(json.dumps(asdict(result)))
