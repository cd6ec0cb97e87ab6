"""/lm/reconcile_leases: the lease that lets one agent per cluster reconcile at a time."""

from typing import NoReturn

from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema

from backend import auth
from backend.lease import LeaseAnswer, current_lease, release_lease, take_lease
from backend.resources.blueprint import Blueprint
from backend.resources.reconcile_leases.schemas import (
    LeaseReleaseSchema,
    LeaseRequestSchema,
    LeaseSchema,
)

blp = Blueprint(
    "reconcile_leases",
    __name__,
    url_prefix="/reconcile_leases",
    description="The lease one agent of a cluster holds while it reconciles (backup controllers)",
)

HELD_ELSEWHERE = "The reconcile lease is held by another agent of the cluster"


def _refuse(answer: LeaseAnswer, cluster: str) -> NoReturn:
    """409 naming the holder and how long its lease still runs (the database's clock)."""
    lease = answer.lease
    if lease is None:
        abort(
            409,
            message=f"Nobody holds the reconcile lease of cluster {cluster!r} (it was released).",
            errors={"holder": None},
        )
    abort(
        409,
        message=f"The reconcile lease of cluster {cluster!r} is held by {lease.holder!r} until "
        f"{lease.expires_at.isoformat()}.",
        errors={
            "holder": lease.holder,
            "expires_at": lease.expires_at.isoformat(),
            "expires_in": answer.seconds_left,
        },
    )


@blp.route("/by_client_id")
class LeaseOfMyCluster(MethodView):
    @auth.require("feature", "read")
    @blp.response(200, LeaseSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Nobody holds the lease")
    def get(self):
        """Show who holds the reconcile lease of the caller's cluster, until when."""
        cluster = auth.current_identity().client_id
        answer = current_lease(cluster)
        if answer.lease is None:
            abort(404, message=f"Nobody holds the reconcile lease of cluster {cluster!r}.")
        return answer.lease

    @auth.require("feature", "update")
    @blp.arguments(LeaseRequestSchema)
    @blp.response(200, LeaseSchema)
    @blp.alt_response(409, schema=ErrorSchema, description=HELD_ELSEWHERE)
    def put(self, request):
        """Take the reconcile lease of the caller's cluster for `ttl` seconds, or renew it.

        Granted when nobody holds it, when it expired, or when the caller (`holder`) already
        holds it. With `takeover_of`, granted only when that holder still has it and let it
        expire (it died): a lease released meanwhile is not taken. Otherwise 409 names the
        holder (null: released) and the seconds its lease still runs (`expires_in`).
        """
        cluster = auth.current_identity().client_id
        answer = take_lease(cluster, request["holder"], request["ttl"], request.get("takeover_of"))
        if not answer.taken:
            _refuse(answer, cluster)
        return answer.lease

    @auth.require("feature", "update")
    @blp.arguments(LeaseReleaseSchema, location="query")
    @blp.response(204)
    @blp.alt_response(409, schema=ErrorSchema, description=HELD_ELSEWHERE)
    def delete(self, request):
        """Give the lease up (nothing to do when the caller does not hold it and nobody does)."""
        cluster = auth.current_identity().client_id
        answer = release_lease(cluster, request["holder"])
        if answer.lease is not None and (answer.seconds_left or 0) > 0:
            _refuse(answer, cluster)
