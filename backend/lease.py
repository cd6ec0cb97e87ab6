"""The reconcile lease: at most one agent per cluster reconciles at a time, across hosts.

An agent takes the lease for `ttl` seconds when its cycle starts, renews it while the cycle runs
and releases it (deletes the row) when the cycle ends. Another agent of the cluster asking
meanwhile is refused; it may wait and ask to *take over* the lease it was refused: that is
granted only once the lease expired unreleased, i.e. its holder died (SIGKILL, host down) and
stopped renewing. A lease released normally cannot be taken over, so the waiting agent does not
run a second cycle right after the first.

Taking is one INSERT ... ON CONFLICT DO UPDATE ... WHERE statement and taking over one
UPDATE ... WHERE: PostgreSQL's row lock makes agents asking at once see one winner, however many
API processes and hosts serve them. Times are the database's (`now()`), never the hosts'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Update, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import Insert, insert

from backend.extensions import db
from backend.models import ReconcileLease


@dataclass(frozen=True)
class LeaseAnswer:
    """Whether the caller holds the lease now, and the lease as it stands (None: nobody's)."""

    taken: bool
    lease: ReconcileLease | None
    seconds_left: float | None  # until the lease expires, by the database's clock


def take_lease(
    cluster: str, holder: str, ttl: float, takeover_of: str | None = None
) -> LeaseAnswer:
    """Take (or, for its holder, renew) the cluster's lease for `ttl` seconds.

    Without `takeover_of`: granted when nobody holds it, it expired, or `holder` holds it.
    With `takeover_of`: granted only when `takeover_of` still holds it and it expired (its holder
    stopped renewing), or `holder` holds it already.
    """
    table = ReconcileLease.__table__
    expires_at = func.now() + timedelta(seconds=ttl)
    statement: Insert | Update
    if takeover_of is None:
        wanted = insert(table).values(
            cluster_client_id=cluster, holder=holder, acquired_at=func.now(), expires_at=expires_at
        )
        renewal = table.c.holder == wanted.excluded.holder
        statement = wanted.on_conflict_do_update(
            index_elements=[table.c.cluster_client_id],
            set_={
                "holder": wanted.excluded.holder,
                "expires_at": wanted.excluded.expires_at,
                "acquired_at": case(
                    (renewal, table.c.acquired_at), else_=wanted.excluded.acquired_at
                ),
            },
            where=or_(renewal, table.c.expires_at <= func.now()),
        )
    else:
        renewal = table.c.holder == holder
        statement = (
            update(table)
            .where(
                table.c.cluster_client_id == cluster,
                or_(renewal, (table.c.holder == takeover_of) & (table.c.expires_at <= func.now())),
            )
            .values(
                holder=holder,
                expires_at=expires_at,
                acquired_at=case((renewal, table.c.acquired_at), else_=func.now()),
            )
        )
    taken = db.session.execute(statement.returning(table.c.holder)).first() is not None
    db.session.commit()
    lease, seconds_left = _lease_of(cluster)
    return LeaseAnswer(taken, lease, seconds_left)


def release_lease(cluster: str, holder: str) -> LeaseAnswer:
    """Give the lease up; the answer shows the lease another holder has, if any."""
    deleted = db.session.execute(
        delete(ReconcileLease)
        .where(ReconcileLease.cluster_client_id == cluster, ReconcileLease.holder == holder)
        .returning(ReconcileLease.holder)
    ).first()
    db.session.commit()
    lease, seconds_left = _lease_of(cluster)
    return LeaseAnswer(deleted is not None, lease, seconds_left)


def current_lease(cluster: str) -> LeaseAnswer:
    """The cluster's lease while it has not expired."""
    lease, seconds_left = _lease_of(cluster)
    if lease is None or seconds_left is None or seconds_left <= 0:
        return LeaseAnswer(False, None, None)
    return LeaseAnswer(False, lease, seconds_left)


def _lease_of(cluster: str) -> tuple[ReconcileLease | None, float | None]:
    row = db.session.execute(
        select(ReconcileLease, func.extract("epoch", ReconcileLease.expires_at - func.now()))
        .where(ReconcileLease.cluster_client_id == cluster)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None, None
    return row[0], float(row[1])
