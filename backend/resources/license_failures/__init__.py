"""/lm/license_failures: jobs the epilog found dead for lack of a license (history, no edits)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from backend import auth
from backend.extensions import db
from backend.models import LicenseFailure
from backend.resources.blueprint import Blueprint
from backend.resources.jobs import caller_cluster
from backend.resources.license_failures.schemas import (
    LicenseFailureCreateSchema,
    LicenseFailureFilterSchema,
    LicenseFailureSchema,
)
from backend.resources.listing import Listing, paginate
from backend.resources.persistence import get_or_404

blp = Blueprint(
    "license_failures",
    __name__,
    url_prefix="/license_failures",
    description="Jobs that died for lack of a license: requeued, or left failed and why",
)

LISTING = Listing(
    "LicenseFailure",
    {
        "id": LicenseFailure.id,
        "slurm_job_id": LicenseFailure.slurm_job_id,
        "cluster_client_id": LicenseFailure.cluster_client_id,
        "username": LicenseFailure.username,
        "feature": LicenseFailure.feature,
        "action": LicenseFailure.action,
        "requeue_count": LicenseFailure.requeue_count,
        "created_at": LicenseFailure.created_at,
    },
    (
        LicenseFailure.slurm_job_id,
        LicenseFailure.cluster_client_id,
        LicenseFailure.username,
        LicenseFailure.feature,
        LicenseFailure.matched_rule,
        LicenseFailure.action,
        LicenseFailure.reason,
    ),
)


class ListArgs(LISTING.args_schema, LicenseFailureFilterSchema):
    """search, sort_field, sort_order plus the exact filters."""


def _caller_cluster_or_all() -> str | None:
    identity = auth.current_identity()
    return None if identity.is_admin else identity.client_id


@blp.route("")
class LicenseFailures(MethodView):
    @auth.require("license-failure", "read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, LicenseFailureSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List license failures: every cluster's for an admin, otherwise the caller's cluster's."""
        statement = select(LicenseFailure)
        cluster = _caller_cluster_or_all()
        if cluster is not None:
            statement = statement.where(LicenseFailure.cluster_client_id == cluster)
        for name in LicenseFailureFilterSchema().fields:
            if name in list_args:
                statement = statement.where(getattr(LicenseFailure, name) == list_args[name])
        return paginate(LISTING.apply(statement, list_args), pagination_parameters)

    @auth.require("license-failure", "create")
    @blp.arguments(LicenseFailureCreateSchema())
    @blp.response(201, LicenseFailureSchema)
    def post(self, event: dict[str, Any]):
        """Record what the epilog decided about a job that died for lack of a license."""
        event["cluster_client_id"] = event.get("cluster_client_id") or caller_cluster()
        auth.ensure_cluster_access(event["cluster_client_id"])
        failure = LicenseFailure(**event)
        db.session.add(failure)
        db.session.commit()
        return failure


@blp.route("/<int:failure_id>")
class LicenseFailureById(MethodView):
    @auth.require("license-failure", "read")
    @blp.response(200, LicenseFailureSchema)
    @blp.alt_response(404, description="No license failure with this id")
    def get(self, failure_id):
        """Show one license failure of the caller's cluster (any cluster's for an admin)."""
        failure = get_or_404(LicenseFailure, failure_id)
        auth.ensure_cluster_access(failure.cluster_client_id)
        return failure
