"""/lm/bookings: licenses set aside for a job, each decided by the booking rule."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import contains_eager

from backend import auth
from backend.booking import book
from backend.extensions import db
from backend.models import Booking, Configuration, Feature, Job, Product
from backend.resources.blueprint import Blueprint
from backend.resources.bookings.schemas import BookingCreateSchema, BookingSchema
from backend.resources.listing import Listing, paginate
from backend.resources.persistence import abort_unknown_reference, get_or_404

blp = Blueprint(
    "bookings", __name__, url_prefix="/bookings", description="Licenses booked for jobs"
)

LISTING = Listing(
    "Booking",
    {
        "id": Booking.id,
        "job_id": Booking.job_id,
        "feature_id": Booking.feature_id,
        "quantity": Booking.quantity,
        "created_at": Booking.created_at,
    },
    (Product.name, Feature.name, Job.slurm_job_id),
)


def booking_view(booking: Booking) -> dict[str, Any]:
    """A booking as the API shows it, naming its license as `product.feature`."""
    return {
        "id": booking.id,
        "job_id": booking.job_id,
        "feature_id": booking.feature_id,
        "product_feature": f"{booking.feature.product.name}.{booking.feature.name}",
        "quantity": booking.quantity,
        "created_at": booking.created_at,
    }


def bookings_with_names() -> Select[Booking]:
    """Bookings with their job, feature and product loaded in the same query."""
    return (
        select(Booking)
        .join(Booking.job)
        .join(Booking.feature)
        .join(Feature.product)
        .options(contains_eager(Booking.feature).contains_eager(Feature.product))
    )


def _get_visible_booking(booking_id: int) -> Booking:
    """The booking (404 if missing), provided the caller may access its job's cluster (403)."""
    booking = get_or_404(Booking, booking_id)
    auth.ensure_cluster_access(booking.job.cluster_client_id)
    return booking


@blp.route("")
class Bookings(MethodView):
    @auth.require("booking", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, BookingSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List bookings: every cluster's for an admin, otherwise the caller's cluster's."""
        statement = bookings_with_names()
        identity = auth.current_identity()
        if not identity.is_admin:
            statement = statement.where(Job.cluster_client_id == identity.client_id)
        bookings = paginate(LISTING.apply(statement, list_args), pagination_parameters)
        return [booking_view(booking) for booking in bookings]

    @auth.require("booking", "create")
    @blp.arguments(BookingCreateSchema())
    @blp.response(201, BookingSchema)
    @blp.alt_response(409, description="Not enough licenses: `errors` says why, nothing booked")
    @blp.alt_response(422, description="Unknown job, or a feature of another cluster")
    def post(self, booking_data):
        """Book licenses of one feature for an existing job, under the booking rule."""
        job_id, feature_id = booking_data["job_id"], booking_data["feature_id"]
        # KEY SHARE keeps the job from being deleted before the booking is committed.
        job = db.session.get(Job, job_id, with_for_update={"key_share": True})
        if job is None:
            abort_unknown_reference("job_id", Job, job_id)
        auth.ensure_cluster_access(job.cluster_client_id)
        feature_cluster = db.session.scalar(
            select(Configuration.cluster_client_id)
            .join(Configuration.features)
            .where(Feature.id == feature_id)
        )
        # Another cluster's feature is unknown to a cluster's token (its existence must not leak).
        if feature_cluster is None or not auth.may_access_cluster(
            auth.current_identity(), feature_cluster
        ):
            abort_unknown_reference("feature_id", Feature, feature_id)
        if feature_cluster != job.cluster_client_id:
            message = (
                f"Feature {feature_id} belongs to cluster {feature_cluster!r}, not to the job's "
                f"cluster {job.cluster_client_id!r}."
            )
            abort(422, message=message, errors={"json": {"feature_id": [message]}})
        [booking] = book(
            job_id, {feature_id: booking_data["quantity"]}, job.cluster_client_id, job.slurm_job_id
        )
        db.session.commit()
        return booking


@blp.route("/<int:booking_id>")
class BookingById(MethodView):
    @auth.require("booking", "read")
    @blp.response(200, BookingSchema)
    @blp.alt_response(404, description="No booking with this id")
    def get(self, booking_id):
        """Show a booking of the caller's cluster (any cluster's for an admin)."""
        return booking_view(_get_visible_booking(booking_id))

    @auth.require("booking", "delete")
    @blp.response(204)
    @blp.alt_response(404, description="No booking with this id")
    def delete(self, booking_id):
        """Release a booking (its licenses become available to every cluster of the pool)."""
        booking = _get_visible_booking(booking_id)
        db.session.execute(delete(Booking).where(Booking.id == booking.id))
        db.session.commit()
