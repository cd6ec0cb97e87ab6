"""Job payloads: a Slurm job of one cluster, optionally booking its licenses in the same request."""

from marshmallow import Schema, ValidationError, fields, validate

from backend.booking import split_product_feature
from backend.resources.bookings.schemas import BookingSchema, Quantity
from backend.resources.fields import SlurmJobId, Text, refuse_unstorable

MAX_BOOKINGS_PER_JOB = 100


def _valid_product_feature(value: str) -> None:
    try:
        split_product_feature(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None


class BookingRequestSchema(Schema):
    """One license of the job, as Slurm names it without the `@server_type` suffix."""

    product_feature = fields.String(
        required=True,
        validate=[validate.Length(min=3, max=511), refuse_unstorable, _valid_product_feature],
        metadata={"example": "abaqus.abaqus"},
    )
    quantity = Quantity(required=True)


class JobCreateSchema(Schema):
    slurm_job_id = SlurmJobId(required=True)
    cluster_client_id = Text(
        metadata={
            "description": "The job's cluster; the token's cluster when absent.",
            "example": "cluster-client-id",
        }
    )
    username = Text(required=True, metadata={"example": "user123"})
    lead_host = Text(required=True, metadata={"example": "host1"})
    bookings = fields.List(
        fields.Nested(BookingRequestSchema),
        load_default=list,
        validate=validate.Length(max=MAX_BOOKINGS_PER_JOB, error="At most {max} bookings per job."),
        metadata={"description": "Licenses to book now, all or nothing."},
    )


class JobSchema(Schema):
    id = fields.Integer()
    slurm_job_id = fields.String()
    cluster_client_id = fields.String()
    username = fields.String()
    lead_host = fields.String()
    created_at = fields.DateTime()
    bookings = fields.List(fields.Nested(BookingSchema))


class JobCreatedSchema(JobSchema):
    untracked = fields.List(
        fields.String(),
        metadata={"description": "Requested licenses the API does not track for the cluster."},
    )


class SlurmJobIdPathSchema(Schema):
    slurm_job_id = SlurmJobId(required=True)


class LicenseNowSchema(Schema):
    """One license the job wants and its pool now, as the booking rule sees it."""

    license = fields.String(metadata={"example": "abaqus.abaqus@flexlm"})
    feature_id = fields.Integer()
    wanted = fields.Integer()
    report_status = fields.String(allow_none=True)
    reported_at = fields.DateTime(allow_none=True)
    fresh = fields.Boolean(
        metadata={"description": "The cluster's own report is recent enough to book on"}
    )
    total = fields.Integer(
        allow_none=True,
        metadata={"description": "Lowest total of the pool's fresh reports (null: none fresh)"},
    )
    used = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Highest used of the pool's fresh reports (desktops, other "
            "clusters, running jobs; null: none fresh)"
        },
    )
    reserved = fields.Integer(metadata={"description": "Kept for desktops (the pool's highest)"})
    booked = fields.Integer(metadata={"description": "Bookings of every cluster on the pool"})
    booked_by_other_clusters = fields.Integer()
    free = fields.Integer(
        metadata={"description": "What the booking rule grants now (0 unless fresh)"}
    )


class RefusalSchema(Schema):
    refused_at = fields.DateTime()
    reasons = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        metadata={
            "description": "Per product.feature, as the 409 said: requested and available, or "
            "a reason (stale, unreachable, ...), with its code"
        },
    )


class JobWhySchema(Schema):
    slurm_job_id = fields.String()
    cluster_client_id = fields.String()
    waiting = fields.Boolean(
        metadata={"description": "Its last refusal is newer than its record (or it has none)"}
    )
    explanation = fields.String(
        metadata={
            "example": "licenses: abaqus.abaqus@flexlm 6 wanted, 4 free of 10 (3 in use on "
            "the license server, 2 reserved for desktops, 1 booked by other clusters)"
        }
    )
    licenses = fields.List(fields.Nested(LicenseNowSchema))
    last_refusal = fields.Nested(RefusalSchema, allow_none=True)
    job_created_at = fields.DateTime(
        allow_none=True, metadata={"description": "When its booking was granted (null: never)"}
    )
