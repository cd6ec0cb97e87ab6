"""Why a job waits for licenses: the prolog's last refusal of a Slurm job, and its pools now.

A refusal records nothing in `jobs` (the admission rolls back), so the last refusal of each
cluster's Slurm job is kept on its own (`job_refusals`): one row per job, replaced by each
refusal (backend/history.py records it), deleted with the job (epilog) and, for jobs that never
ran (cancelled while pending), a week later. `explain` answers for one job of one cluster from
that row, the job's bookings and its licenses' pools as the booking rule sees them now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import selectinload

from backend import booking
from backend.extensions import db
from backend.models import Feature, Job, JobRefusal
from lm_common.facts import REPORT_OK, REPORT_UNPARSABLE

# Licenses booked by `:cluster`'s jobs on each feature's pool (the rest of `booked` is other
# clusters').
CLUSTER_BOOKED_SQL = text(
    booking.POOL_MEMBERS_SQL
    + """
SELECT pool.feature_id, SUM(bookings.quantity)
FROM pool
JOIN bookings ON bookings.feature_id = pool.member_id
JOIN jobs ON jobs.id = bookings.job_id AND jobs.cluster_client_id = :cluster
GROUP BY pool.feature_id
"""
)


def forget(cluster: str, slurm_job_id: str) -> None:
    """Drop the job's refusal (its job ended); the caller commits."""
    db.session.execute(
        delete(JobRefusal).where(
            JobRefusal.cluster_client_id == cluster, JobRefusal.slurm_job_id == slurm_job_id
        )
    )


@dataclass(frozen=True)
class LicenseNow:
    """One license a job wants, and its pool's figures as the booking rule sees them now
    (booking.pool_figures: total and used from the pool's fresh reports, None when none is)."""

    license: str  # as Slurm names it: product.feature@server_type
    feature_id: int
    wanted: int
    report_status: str | None  # of the cluster's own feature, the one the rule books on
    reported_at: datetime | None
    fresh: bool
    total: int | None
    used: int | None  # in use on the license server (desktops, other clusters, running jobs)
    reserved: int  # kept for desktops
    booked: int  # bookings of every cluster on the pool
    booked_by_other_clusters: int
    free: int  # what the rule would grant now

    def explanation(self) -> str:
        """`abaqus.abaqus@flexlm 6 wanted, 4 free of 10 (3 in use, 2 reserved for desktops)`."""
        head = f"{self.license} {self.wanted} wanted"
        if self.report_status != REPORT_OK:
            return f"{head}, {_report_problem(self.report_status)}"
        if not self.fresh or self.total is None:
            return f"{head}, {STALE}"
        own = self.booked - self.booked_by_other_clusters
        parts = [
            (self.used, "in use on the license server"),
            (self.reserved, "reserved for desktops"),
            (self.booked_by_other_clusters, "booked by other clusters"),
            (own, "booked by this cluster's jobs"),
        ]
        detail = ", ".join(f"{count} {what}" for count, what in parts if count)
        return f"{head}, {self.free} free of {self.total}" + (f" ({detail})" if detail else "")


STALE = "the license server's last report is too old to book on (the agent has not reported)"


def _report_problem(status: str | None) -> str:
    if status is None:
        return booking.NEVER_REPORTED
    return booking.UNPARSABLE if status == REPORT_UNPARSABLE else booking.UNREACHABLE


def licenses_now(cluster: str, wanted: Mapping[int, int]) -> list[LicenseNow]:
    """The pools of the wanted features (feature id -> licenses) now; deleted features left out."""
    ids = sorted(wanted)
    features = db.session.scalars(
        select(Feature)
        .where(Feature.id.in_(ids))
        .options(selectinload(Feature.product), selectinload(Feature.configuration))
        .order_by(Feature.id)
    ).all()
    pools = booking.pool_figures(ids)
    own: dict[int, int] = dict(
        db.session.execute(CLUSTER_BOOKED_SQL, {"feature_ids": ids, "cluster": cluster}).all()
    )
    return [
        LicenseNow(
            license=f"{feature.product.name}.{feature.name}@{feature.configuration.type}",
            feature_id=feature.id,
            wanted=wanted[feature.id],
            report_status=feature.report_status,
            reported_at=feature.reported_at,
            fresh=pool.fresh,
            total=pool.total,
            used=pool.used,
            reserved=pool.reserved,
            booked=pool.booked,
            booked_by_other_clusters=pool.booked - int(own.get(feature.id, 0)),
            free=pool.available,
        )
        for feature in features
        if (pool := pools.get(feature.id)) is not None
    ]


def explain(cluster: str, slurm_job_id: str) -> dict[str, Any] | None:
    """Why the cluster's Slurm job waits (or that it does not), or None when the API knows
    neither a record nor a refusal of it.

    The job waits when its last refusal is newer than its record (a requeued job refused again
    keeps its earlier record); it wants then what it was refused, otherwise what it booked.
    """
    job = db.session.scalar(
        select(Job)
        .where(Job.cluster_client_id == cluster, Job.slurm_job_id == slurm_job_id)
        .options(selectinload(Job.bookings))
    )
    refusal = db.session.get(JobRefusal, (cluster, slurm_job_id))
    if job is None and refusal is None:
        return None
    waiting = refusal is not None and (job is None or refusal.refused_at > job.created_at)
    wanted: dict[int, int] = {}
    if waiting and refusal is not None:
        wanted = {int(feature_id): quantity for feature_id, quantity in refusal.wanted.items()}
    elif job is not None:
        for held in job.bookings:
            wanted[held.feature_id] = wanted.get(held.feature_id, 0) + held.quantity
    licenses = licenses_now(cluster, wanted)
    if waiting:
        explanation = "licenses: " + (
            "; ".join(license.explanation() for license in licenses)
            or "the licenses it wanted are no longer tracked"
        )
    elif licenses:
        explanation = "not waiting for licenses: booked " + ", ".join(
            f"{license.license} {license.wanted}" for license in licenses
        )
    else:
        explanation = "not waiting for licenses: it holds no booking"
    return {
        "slurm_job_id": slurm_job_id,
        "cluster_client_id": cluster,
        "waiting": waiting,
        "explanation": explanation,
        "licenses": [asdict(license) for license in licenses],
        "last_refusal": (
            None
            if refusal is None
            else {"refused_at": refusal.refused_at, "reasons": refusal.reasons}
        ),
        "job_created_at": None if job is None else job.created_at,
    }
