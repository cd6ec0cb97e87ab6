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
        validate=validate.Length(max=MAX_BOOKINGS_PER_JOB),
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
