"""License pools and booking admission (design.md "Booking rule").

A pool is one product.feature on one set of license servers: the features with the same product
and the same name (case-insensitive) on configurations linked by a shared license server (same
host, case-insensitive, and port), transitively, since servers named together are mirrors.
Bookings of every cluster on a pool count against it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text

from backend.extensions import db

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

BOOKED_ON_POOLS_SQL = text(
    POOL_MEMBERS_SQL
    + """
SELECT pool.feature_id, COALESCE(SUM(bookings.quantity), 0) AS booked
FROM pool LEFT JOIN bookings ON bookings.feature_id = pool.member_id
GROUP BY pool.feature_id
"""
)


def booked_on_pools(feature_ids: Iterable[int]) -> dict[int, int]:
    """Licenses booked by every cluster on each feature's pool; unknown ids are left out."""
    ids = sorted(set(feature_ids))
    if not ids:
        return {}
    rows = db.session.execute(BOOKED_ON_POOLS_SQL, {"feature_ids": ids})
    return {feature_id: int(booked) for feature_id, booked in rows}
