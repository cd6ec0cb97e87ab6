"""Where a booking is decided: license pools, booking admission and job posting.

A job's post (the prolog's one request) resolves the licenses its cluster tracks, sums repeats,
replaces an earlier record of the same Slurm job (a requeued job) and books the rest all or
nothing against the booking rule (docs/architecture.md).

A pool is one product.feature on one set of license servers: the features with the same product
and the same name (case-insensitive) on configurations linked by a shared license server (same
host, case-insensitive, and port), transitively, since servers named together are mirrors.
Bookings of every cluster on a pool count against it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import current_app
from flask_smorest import abort
from sqlalchemy import Row, text

from backend import history
from backend.extensions import db
from lm_common.facts import REPORT_OK, REPORT_UNPARSABLE

# (feature_id, member_id) for every requested feature and each feature of its pool (itself too).
# `linked` walks configurations through shared servers; UNION drops repeats, so it terminates.
POOL_MEMBERS_SQL = """
WITH RECURSIVE linked(root_config_id, config_id) AS (
        SELECT DISTINCT config_id, config_id FROM features WHERE id = ANY(:feature_ids)
    UNION
        SELECT linked.root_config_id, other.config_id
        FROM linked
        JOIN license_servers mine ON mine.config_id = linked.config_id
        JOIN license_servers other
            ON lower(other.host) = lower(mine.host) AND other.port = mine.port
),
pool AS (
    SELECT requested.id AS feature_id, member.id AS member_id
    FROM features requested
    JOIN linked ON linked.root_config_id = requested.config_id
    JOIN features member
        ON member.config_id = linked.config_id
        AND member.product_id = requested.product_id
        AND lower(member.name) = lower(requested.name)
    WHERE requested.id = ANY(:feature_ids)
)
"""


def _freshness() -> dict[str, int]:
    """The parameters of `_recent`."""
    return {
        "fresh_intervals": current_app.config["LM_SETTINGS"].report_fresh_intervals,
        "default_interval": DEFAULT_REPORT_INTERVAL,
    }


def _recent(feature: str) -> str:
    """SQL: `feature`'s last report is recent enough to book on: within LM_REPORT_FRESH_INTERVALS
    of its agent's reconcile interval (the default interval when the report stated none)."""
    return (
        f"{feature}.reported_at > now() - make_interval(secs => :fresh_intervals"
        f" * COALESCE({feature}.report_interval, :default_interval))"
    )


# A pool's figures, conservatively from the members whose report is fresh (the server answered,
# recently): the lowest total, the highest used. Members are views of one server, so their
# figures differ only by timing or by mistake; this way one cluster reporting a higher total or
# a lower usage, by mistake or on purpose, cannot make another cluster's pool overbook. The
# desktops' `reserved` is configuration, not a report: the highest of all members counts.
# `member_ids` feeds the pool's bookings (of every cluster).
POOL_FIGURES = f"""
    MIN(member.total) FILTER (WHERE member.report_status = 'ok' AND {_recent("member")}) AS total,
    MAX(member.used) FILTER (WHERE member.report_status = 'ok' AND {_recent("member")}) AS used,
    MAX(member.reserved) AS reserved,
    array_agg(member.id) AS member_ids
"""
POOL_BOOKED = "(SELECT COALESCE(SUM(quantity), 0) FROM bookings WHERE feature_id = ANY({}))"

POOL_FIGURES_SQL = text(
    POOL_MEMBERS_SQL
    + f""",
figures AS (
    SELECT pool.feature_id, {POOL_FIGURES}
    FROM pool JOIN features member ON member.id = pool.member_id
    GROUP BY pool.feature_id
)
SELECT figures.feature_id, figures.total, figures.used, figures.reserved,
    {POOL_BOOKED.format("figures.member_ids")} AS booked,
    requested.report_status = 'ok' AND {_recent("requested")} AS fresh
FROM figures JOIN features requested ON requested.id = figures.feature_id
"""
)


@dataclass(frozen=True)
class PoolFigures:
    """What the booking rule knows of one feature's pool (docs/architecture.md, "Pools").

    `total` and `used` are None when no member has a fresh report; `fresh` is whether the
    feature's own report is (the rule books only on a fresh report of the cluster's own server).
    """

    total: int | None
    used: int | None
    reserved: int
    booked: int
    fresh: bool

    @property
    def available(self) -> int:
        """Licenses the rule would grant now: total - used - reserved - booked, at least 0."""
        if not self.fresh or self.total is None or self.used is None:
            return 0
        return max(0, self.total - self.used - self.reserved - self.booked)


def pool_figures(feature_ids: Iterable[int]) -> dict[int, PoolFigures]:
    """Each feature's pool figures, from every cluster's members; unknown ids are left out."""
    ids = sorted(set(feature_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        POOL_FIGURES_SQL,
        {"feature_ids": ids, **_freshness()},
    )
    return {
        row.feature_id: PoolFigures(
            total=row.total,
            used=row.used,
            reserved=int(row.reserved),
            booked=int(row.booked),
            fresh=bool(row.fresh),
        )
        for row in rows
    }


# Row locks on every feature of the requested pools, in id order so that two admissions
# locking overlapping pools queue behind each other instead of deadlocking. Answers the pools.
LOCK_POOLS_SQL = text(
    POOL_MEMBERS_SQL
    + """,
locked AS (
    SELECT id FROM features WHERE id IN (SELECT member_id FROM pool) ORDER BY id FOR UPDATE
)
SELECT pool.feature_id, pool.member_id FROM pool JOIN locked ON locked.id = pool.member_id
"""
)

# Inserts the bookings and answers, for each, what the rule needs about its feature: one round
# trip once the locks are held. Being a new statement, under READ COMMITTED it sees the bookings
# of every admission that held the locks before; being one statement, its own inserts are not
# in the sums. When the rule refuses, the caller rolls the inserts back.
BOOK_AND_STATE_SQL = text(
    f"""
WITH inserted AS (
    INSERT INTO bookings (job_id, feature_id, quantity, created_at)
    SELECT :job_id, wanted.feature_id, wanted.quantity, now()
    FROM unnest(CAST(:feature_ids AS integer[]), CAST(:quantities AS bigint[]))
        AS wanted(feature_id, quantity)
    RETURNING id, job_id, feature_id, quantity, created_at
),
pool AS (
    SELECT members.feature_id, {POOL_FIGURES}
    FROM unnest(CAST(:pool_feature_ids AS integer[]), CAST(:pool_member_ids AS integer[]))
        AS members(feature_id, member_id)
    JOIN features member ON member.id = members.member_id
    GROUP BY members.feature_id
)
SELECT inserted.id, inserted.job_id, inserted.feature_id, inserted.quantity,
    inserted.created_at, products.name || '.' || requested.name AS product_feature,
    pool.total, pool.used, pool.reserved, requested.report_status,
    {_recent("requested")} AS fresh,
    COALESCE(requested.report_interval, :default_interval) AS report_interval,
    EXTRACT(EPOCH FROM now() - requested.reported_at) AS report_age,
    {POOL_BOOKED.format("pool.member_ids")} AS booked
FROM inserted
JOIN pool ON pool.feature_id = inserted.feature_id
JOIN features requested ON requested.id = inserted.feature_id
JOIN products ON products.id = requested.product_id
ORDER BY inserted.feature_id
"""
)
BOOKING_FIELDS = ("id", "job_id", "feature_id", "product_feature", "quantity", "created_at")


def booked_on_pools(feature_ids: Iterable[int]) -> dict[int, int]:
    """Licenses booked by every cluster on each feature's pool; unknown ids are left out."""
    return {feature_id: pool.booked for feature_id, pool in pool_figures(feature_ids).items()}


# The cluster's feature for each wanted (product, feature) pair, lowercased. When two of the
# cluster's configurations carry the same product.feature, the lowest feature id wins.
RESOLVE_SQL = text(
    """
SELECT DISTINCT ON (wanted.product, wanted.feature)
    wanted.product, wanted.feature, features.id
FROM unnest(CAST(:products AS text[]), CAST(:features AS text[])) AS wanted(product, feature)
JOIN products ON lower(products.name) = wanted.product
JOIN features ON features.product_id = products.id AND lower(features.name) = wanted.feature
JOIN configurations ON configurations.id = features.config_id
WHERE configurations.cluster_client_id = :cluster_client_id
ORDER BY wanted.product, wanted.feature, features.id
"""
)

NEVER_REPORTED = "the license server has never been reported"
UNREACHABLE = "the license server was unreachable at the last report"
UNPARSABLE = "the license server's output was not understood at the last report"
# A report that states no interval (an agent from before reports stated it) is taken to come
# from the agent's default stat_interval.
DEFAULT_REPORT_INTERVAL = 60
VANISHED = "the feature was deleted meanwhile"


def split_product_feature(product_feature: str) -> tuple[str, str]:
    """`product.feature` (split at the first dot) as lowercase parts; ValueError if malformed."""
    product, dot, feature = product_feature.partition(".")
    product, feature = product.strip(), feature.strip()
    if not dot or not product or not feature:
        raise ValueError(f"{product_feature!r} is not of the form product.feature")
    return product.lower(), feature.lower()


def resolve_product_features(
    cluster_client_id: str, product_features: Iterable[str]
) -> dict[str, int]:
    """Map each `product.feature` the cluster's configurations track to its feature id.

    Names match case-insensitively; names the cluster does not track are left out.
    """
    wanted = {name: split_product_feature(name) for name in product_features}
    if not wanted:
        return {}
    pairs = sorted(set(wanted.values()))
    rows = db.session.execute(
        RESOLVE_SQL,
        {
            "products": [product for product, _ in pairs],
            "features": [feature for _, feature in pairs],
            "cluster_client_id": cluster_client_id,
        },
    )
    feature_ids = {(product, feature): feature_id for product, feature, feature_id in rows}
    return {name: feature_ids[pair] for name, pair in wanted.items() if pair in feature_ids}


def _shortage(state: Row[Any], requested: int) -> dict[str, object] | None:
    """Why the rule refuses `requested` licenses of one feature, or None when it grants them.

    `code` is one of REFUSAL_REASONS (kept in the refusal history, a metric label)."""
    if state.report_status is None:
        return {"requested": requested, "reason": NEVER_REPORTED, "code": "never_reported"}
    if state.report_status != REPORT_OK:
        reason = UNPARSABLE if state.report_status == REPORT_UNPARSABLE else UNREACHABLE
        return {"requested": requested, "reason": reason, "code": state.report_status}
    if not state.fresh:
        intervals = current_app.config["LM_SETTINGS"].report_fresh_intervals
        return {
            "requested": requested,
            "reason": f"stale: last report {int(state.report_age)} s ago, older than "
            f"{intervals} reconcile intervals of {state.report_interval} s",
            "code": "stale",
        }
    figures = PoolFigures(state.total, state.used, state.reserved, int(state.booked), True)
    available = figures.available
    if requested > available:
        return {"requested": requested, "available": available, "code": "insufficient"}
    return None


# What a refusal keeps for its history (backend/history.py) but does not answer.
HISTORY_ONLY = ("code", "feature_id")


def _refuse(
    errors: dict[str, dict[str, object]],
    cluster: str,
    slurm_job_id: str,
    quantities: Mapping[int, int],
) -> NoReturn:
    """Roll the request back, keep the refusals in the history and as the job's last refusal
    (backend/why.py), and answer 409 naming each refused license and why."""
    db.session.rollback()
    history.record_refusals(cluster, errors, slurm_job_id, quantities)
    errors = {
        name: {key: value for key, value in shortage.items() if key not in HISTORY_ONLY}
        for name, shortage in errors.items()
    }
    reasons = "; ".join(
        f"{name}: {shortage['requested']} requested, "
        + (
            f"{shortage['available']} available"
            if "available" in shortage
            else str(shortage["reason"])
        )
        for name, shortage in errors.items()
    )
    abort(409, message=f"Licenses refused, nothing was booked ({reasons}).", errors=errors)


def book(
    job_id: int, quantities: Mapping[int, int], cluster: str, slurm_job_id: str
) -> list[dict[str, Any]]:
    """Book `quantities` (feature id -> licenses) for Slurm job `slurm_job_id` of `cluster`
    (the API's job `job_id`), all or nothing, or
    abort with 409 (the refusal kept in the usage history).

    Locks every feature row of the requested pools, then inserts and checks the rule against
    the bookings of every cluster. The caller's transaction holds the locks until it commits,
    so the check and the insert are atomic against every other API process.
    Returns the new bookings as the API shows them.
    """
    if not quantities:
        return []
    feature_ids = sorted(quantities)
    pool = db.session.execute(LOCK_POOLS_SQL, {"feature_ids": feature_ids}).all()
    vanished = set(feature_ids) - {feature_id for feature_id, _ in pool}
    if vanished:
        _refuse(
            {
                f"feature {feature_id}": {
                    "requested": quantities[feature_id],
                    "reason": VANISHED,
                    "code": "vanished",
                    "feature_id": feature_id,
                }
                for feature_id in sorted(vanished)
            },
            cluster,
            slurm_job_id,
            quantities,
        )
    states = db.session.execute(
        BOOK_AND_STATE_SQL,
        {
            "job_id": job_id,
            "feature_ids": feature_ids,
            "quantities": [quantities[feature_id] for feature_id in feature_ids],
            "pool_feature_ids": [feature_id for feature_id, _ in pool],
            "pool_member_ids": [member_id for _, member_id in pool],
            **_freshness(),
        },
    ).all()
    errors = {}
    for state in states:
        shortage = _shortage(state, state.quantity)
        if shortage is not None:
            errors[state.product_feature] = {**shortage, "feature_id": state.feature_id}
    if errors:
        _refuse(errors, cluster, slurm_job_id, quantities)
    history.count_granted(quantities)
    return [{field: getattr(state, field) for field in BOOKING_FIELDS} for state in states]


# Insert the job, or take over the record of the same Slurm job of the cluster and drop its
# bookings. An upsert rather than delete-then-insert, so two posts of one job cannot both insert.
REPLACE_JOB_SQL = text(
    """
WITH job AS (
    INSERT INTO jobs (slurm_job_id, cluster_client_id, username, lead_host, created_at)
    VALUES (:slurm_job_id, :cluster_client_id, :username, :lead_host, now())
    ON CONFLICT (cluster_client_id, slurm_job_id) DO UPDATE SET
        username = EXCLUDED.username,
        lead_host = EXCLUDED.lead_host,
        created_at = EXCLUDED.created_at
    RETURNING id, slurm_job_id, cluster_client_id, username, lead_host, created_at
),
released AS (DELETE FROM bookings WHERE job_id IN (SELECT id FROM job))
SELECT * FROM job
"""
)


def tracked_quantities(
    feature_ids: Mapping[str, int], requests: Iterable[Mapping[str, Any]]
) -> tuple[dict[int, int], list[str]]:
    """Licenses per tracked feature id (repeats of one license summed), and the names of the
    untracked ones in the order first requested (those are ignored: the job passes)."""
    quantities: defaultdict[int, int] = defaultdict(int)
    untracked: list[str] = []
    for request in requests:
        name = request["product_feature"]
        if name in feature_ids:
            quantities[feature_ids[name]] += request["quantity"]
        elif name not in untracked:
            untracked.append(name)
    return dict(quantities), untracked


def post_job(job: Mapping[str, Any], requests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Record a job of `job["cluster_client_id"]` and book its tracked licenses, all or nothing,
    then commit; abort with 409 (nothing recorded) when the rule refuses.

    Posting a Slurm job id of the cluster again replaces that job and its bookings. Returns the
    job's row with its new `bookings` and the `untracked` license names.
    """
    feature_ids = resolve_product_features(
        job["cluster_client_id"], [request["product_feature"] for request in requests]
    )
    quantities, untracked = tracked_quantities(feature_ids, requests)
    row = db.session.execute(REPLACE_JOB_SQL, dict(job)).one()._asdict()
    bookings = book(row["id"], quantities, job["cluster_client_id"], row["slurm_job_id"])
    db.session.commit()
    return {**row, "bookings": bookings, "untracked": untracked}
