"""/lm/jobs: each cluster's Slurm jobs and their bookings (prolog posts, epilog deletes)."""

from __future__ import annotations

import re
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import selectinload

from backend import auth, why
from backend.booking import post_job
from backend.extensions import db
from backend.models import Booking, Feature, Job
from backend.resources.blueprint import Blueprint
from backend.resources.bookings import booking_view
from backend.resources.fields import SlurmJobId
from backend.resources.jobs.schemas import (
    JobCreatedSchema,
    JobCreateSchema,
    JobSchema,
    JobWhySchema,
    SlurmJobIdPathSchema,
)
from backend.resources.listing import Listing, paginate
from backend.resources.persistence import get_or_404

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Slurm jobs and their bookings")

LISTING = Listing(
    "Job",
    {
        "id": Job.id,
        "slurm_job_id": Job.slurm_job_id,
        "cluster_client_id": Job.cluster_client_id,
        "username": Job.username,
        "lead_host": Job.lead_host,
        "created_at": Job.created_at,
    },
    (Job.slurm_job_id, Job.cluster_client_id, Job.username, Job.lead_host),
)
WITH_BOOKINGS = selectinload(Job.bookings).joinedload(Booking.feature).joinedload(Feature.product)


def job_view(job: Job) -> dict[str, Any]:
    """A job as the API shows it, with its bookings."""
    return {
        "id": job.id,
        "slurm_job_id": job.slurm_job_id,
        "cluster_client_id": job.cluster_client_id,
        "username": job.username,
        "lead_host": job.lead_host,
        "created_at": job.created_at,
        "bookings": [booking_view(booking) for booking in job.bookings],
    }


def _jobs(cluster_client_id: str | None) -> Select[Job]:
    """Jobs with their bookings, of one cluster or (None) of all."""
    statement = select(Job).options(WITH_BOOKINGS)
    if cluster_client_id is not None:
        statement = statement.where(Job.cluster_client_id == cluster_client_id)
    return statement


def _list(cluster_client_id: str | None, list_args, pagination_parameters) -> list[dict[str, Any]]:
    jobs = paginate(LISTING.apply(_jobs(cluster_client_id), list_args), pagination_parameters)
    return [job_view(job) for job in jobs]


def caller_cluster() -> str:
    """The cluster of the token; 422 when the token names none (a person's never does)."""
    identity = auth.current_identity()
    if identity.person:
        abort(
            422,
            message=f"The token is {identity}'s, who is no cluster: name the cluster "
            "(cluster_client_id), or find jobs by id (GET /lm/jobs?search=...).",
        )
    if not identity.client_id:
        abort(422, message="The token names no cluster (no client_id or azp claim).")
    return identity.client_id


def _visible_job(job_id: int) -> Job:
    job = get_or_404(Job, job_id, WITH_BOOKINGS)
    auth.ensure_cluster_access(job.cluster_client_id)
    return job


def _own_job_by_slurm_id(slurm_job_id: str) -> Job:
    cluster = caller_cluster()
    # An id no job can have (NUL bytes, ...) is not found; PostgreSQL would refuse to compare it.
    job = (
        db.session.scalar(_jobs(cluster).where(Job.slurm_job_id == slurm_job_id))
        if re.fullmatch(SlurmJobId.PATTERN, slurm_job_id)
        else None
    )
    if job is None:
        abort(404, message=f"No job {slurm_job_id!r} in cluster {cluster!r}.")
    return job


def _delete(job: Job) -> None:
    """Delete the job and its last refusal; the database deletes its bookings with it."""
    db.session.execute(delete(Job).where(Job.id == job.id))
    why.forget(job.cluster_client_id, job.slurm_job_id)
    db.session.commit()


@blp.route("")
class Jobs(MethodView):
    @auth.require("job", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List jobs: every cluster's for an admin, otherwise the caller's cluster's."""
        identity = auth.current_identity()
        cluster = None if identity.is_admin else identity.client_id
        return _list(cluster, list_args, pagination_parameters)

    @auth.require("job", "create")
    @blp.arguments(JobCreateSchema())
    @blp.response(201, JobCreatedSchema)
    @blp.alt_response(409, description="Not enough licenses: `errors` says why, nothing booked")
    def post(self, job_data):
        """Record a job and book its licenses, all or nothing (the prolog's one request).

        Posting the same cluster's slurm_job_id again replaces the job and its bookings.
        Licenses the cluster's configurations do not track are ignored and listed as
        `untracked`.
        """
        requests = job_data.pop("bookings")
        job_data["cluster_client_id"] = job_data.get("cluster_client_id") or caller_cluster()
        auth.ensure_cluster_access(job_data["cluster_client_id"])
        return post_job(job_data, requests)


@blp.route("/by_client_id")
class JobsOfCaller(MethodView):
    @auth.require("job", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List the jobs of the token's cluster."""
        return _list(caller_cluster(), list_args, pagination_parameters)


@blp.route("/<int:job_id>")
class JobById(MethodView):
    @auth.require("job", "read")
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="No job with this id")
    def get(self, job_id):
        """Show a job of the caller's cluster (any cluster's for an admin)."""
        return job_view(_visible_job(job_id))

    @auth.require("job", "delete")
    @blp.response(204)
    @blp.alt_response(404, description="No job with this id")
    def delete(self, job_id):
        """Delete a job and release its bookings."""
        _delete(_visible_job(job_id))


@blp.route("/slurm_job_id/<string:slurm_job_id>")
class JobBySlurmId(MethodView):
    @auth.require("job", "read")
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="The caller's cluster has no job with this Slurm id")
    def get(self, slurm_job_id):
        """Show the caller's cluster's job with this Slurm job id."""
        return job_view(_own_job_by_slurm_id(slurm_job_id))

    @auth.require("job", "delete")
    @blp.response(204)
    @blp.alt_response(404, description="The caller's cluster has no job with this Slurm id")
    def delete(self, slurm_job_id):
        """Delete the caller's cluster's job with this Slurm job id (the epilog's request)."""
        _delete(_own_job_by_slurm_id(slurm_job_id))


@blp.route("/slurm_job_id/<string:slurm_job_id>/why")
class WhyJobWaits(MethodView):
    @auth.require("job", "read")
    @blp.arguments(SlurmJobIdPathSchema, location="path", as_kwargs=True)
    @blp.response(200, JobWhySchema)
    @blp.alt_response(404, description="The caller's cluster knows no job with this Slurm id")
    def get(self, slurm_job_id):
        """Why the caller's cluster's job waits for licenses: what it wants, its pools now, and
        the prolog's last refusal."""
        cluster = caller_cluster()
        answer = why.explain(cluster, slurm_job_id)
        if answer is None:
            abort(404, message=f"No job {slurm_job_id!r} in cluster {cluster!r}.")
        return answer
