"""License-failure payloads: what the epilog saw and did about a job that lacked a license."""

from marshmallow import Schema, fields, validate

from backend.models import LICENSE_FAILURE_ACTIONS
from backend.resources.fields import Count, SlurmJobId, Text, refuse_unstorable

MAX_REASON_LENGTH = 2000


def _bounded_text(maximum: int, **kwargs) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=maximum), refuse_unstorable], **kwargs
    )


def _action(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.OneOf(LICENSE_FAILURE_ACTIONS, error="action must be one of: {choices}."),
        metadata={"description": "requeued, or left_failed (limit reached, requeue turned off...)"},
        **kwargs,
    )


class LicenseFailureCreateSchema(Schema):
    slurm_job_id = SlurmJobId(required=True)
    cluster_client_id = Text(
        metadata={"description": "The job's cluster; the token's cluster when absent."}
    )
    username = Text(required=True, metadata={"example": "user123"})
    feature = _bounded_text(
        511,
        required=True,
        metadata={"description": "The license(s) concerned: product.feature[,...]"},
    )
    matched_rule = _bounded_text(
        511,
        required=True,
        metadata={"example": "FlexNet -4 'Licensed number of users already reached'"},
    )
    output_file = _bounded_text(4096, metadata={"description": "Where the text was found"})
    action = _action(required=True)
    requeue_count = Count(
        required=True, metadata={"description": "Requeues for a license failure, this one included"}
    )
    reason = _bounded_text(MAX_REASON_LENGTH, required=True, metadata={"example": "requeue 1 of 3"})


class LicenseFailureSchema(Schema):
    id = fields.Integer()
    slurm_job_id = fields.String()
    cluster_client_id = fields.String()
    username = fields.String()
    feature = fields.String()
    matched_rule = fields.String()
    output_file = fields.String(allow_none=True)
    action = fields.String()
    requeue_count = fields.Integer()
    reason = fields.String()
    created_at = fields.DateTime()


class LicenseFailureFilterSchema(Schema):
    """Exact filters on top of search/sort: the agent counts one job's requeues with them."""

    slurm_job_id = SlurmJobId()
    action = _action()
