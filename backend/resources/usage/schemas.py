"""Usage-history query strings and answers."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields

from backend.resources.features.schemas import CheckoutSchema
from lm_common.durations import parse_duration


class Duration(fields.Field):
    """Seconds, written as a number or with a unit (s, m, h, d, w)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_duration(str(value))
        except ValueError as error:
            raise ValidationError(str(error)) from None


class SeriesArgsSchema(Schema):
    start = fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "ISO 8601 time (UTC when no offset); default end - 24 h"},
    )
    end = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "ISO 8601 time; default now"}
    )
    step = Duration(
        metadata={
            "description": "Seconds per point (or 5m, 1h, 1d); a whole number of hours reads "
            "the hourly rollups. Default: about 500 points, at least 60 s",
            "example": "1h",
        }
    )


class PointSchema(Schema):
    time = fields.DateTime()
    total = fields.Integer(
        allow_none=True, metadata={"description": "Least total reported in the step"}
    )
    used = fields.Integer(allow_none=True, metadata={"description": "Most in use on the server"})
    used_mean = fields.Float(allow_none=True)
    booked = fields.Integer(allow_none=True, metadata={"description": "Most booked on the pool"})
    reserved = fields.Integer(allow_none=True, metadata={"description": "Desktop reserved"})
    reservation = fields.Integer(
        allow_none=True, metadata={"description": "Most held by the Slurm reservations"}
    )
    demand = fields.Integer(
        allow_none=True, metadata={"description": "Most wanted by jobs pending for licenses"}
    )
    demand_mean = fields.Float(allow_none=True)
    full_fraction = fields.Float(
        allow_none=True, metadata={"description": "Share of samples with nothing left to book"}
    )
    samples = fields.Integer()
    failed_samples = fields.Integer(
        metadata={"description": "Samples whose server was unreachable or unparsable"}
    )
    refusals = fields.Integer()
    refused_licenses = fields.Integer()


class SummarySchema(Schema):
    peak_used = fields.Integer(allow_none=True)
    total = fields.Integer(allow_none=True)
    hours_at_100_percent = fields.Float()
    refusals = fields.Integer()
    refused_licenses = fields.Integer()
    peak_demand = fields.Integer(allow_none=True)
    unmet_demand_license_hours = fields.Float()


class SeriesSchema(Schema):
    feature_ids = fields.List(fields.Integer(), metadata={"description": "Pool members read"})
    start = fields.DateTime()
    end = fields.DateTime()
    step = fields.Integer()
    summary = fields.Nested(SummarySchema)
    points = fields.List(fields.Nested(PointSchema))


class CheckoutsSchema(Schema):
    feature_id = fields.Integer()
    sampled_at = fields.DateTime(
        allow_none=True, metadata={"description": "The last report that read the server"}
    )
    checkouts = fields.List(fields.Nested(CheckoutSchema))
