"""Feature payloads, and the agent's usage report."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from backend.resources.fields import (
    MAX_TEXT_LENGTH,
    BoundedInteger,
    Count,
    PartialUpdate,
    RowId,
    Text,
    refuse_unstorable,
)
from lm_common.facts import REPORT_STATUSES


class ProductReferenceSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class PoolSchema(Schema):
    """A pool's figures: from every cluster's fresh reports, conservatively."""

    total = fields.Integer(
        allow_none=True,
        metadata={"description": "Lowest total of the pool's fresh reports (null: none fresh)"},
    )
    used = fields.Integer(
        allow_none=True,
        metadata={"description": "Highest used of the pool's fresh reports (null: none fresh)"},
    )
    reserved = fields.Integer(metadata={"description": "Highest `reserved` of the pool"})


class FeatureSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, metadata={"example": "abaqus"})
    product_id = RowId(required=True, load_only=True, metadata={"example": 1})
    product = fields.Nested(ProductReferenceSchema, dump_only=True)
    config_id = RowId(required=True, metadata={"example": 1})
    reserved = Count(metadata={"description": "Licenses kept for desktops (default 0)"})
    total = Count(metadata={"description": "Licenses on the server, as last reported"})
    used = Count(metadata={"description": "Licenses in use on the server, as last reported"})
    booked = fields.Integer(
        attribute="pool.booked",
        dump_only=True,
        metadata={"description": "Bookings of every cluster on this pool"},
    )
    available = fields.Integer(
        attribute="pool.available",
        dump_only=True,
        metadata={
            "description": "What the booking rule grants now: pool total - used - reserved - "
            "booked, at least 0; 0 while this feature's own report is not fresh"
        },
    )
    pool = fields.Nested(PoolSchema, dump_only=True)
    reported_at = fields.DateTime(dump_only=True, allow_none=True)
    report_status = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Last report: ok, unreachable (server down or printing an error) or "
            "unparsable (output the agent did not understand); null before the first"
        },
    )
    report_interval = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Seconds between the reporting agent's cycles, as it stated"},
    )


# Entries of one usage report: far more features than any site has, few enough that a report
# is one quick transaction.
MAX_REPORT_ENTRIES = 10_000


def _name() -> fields.String:
    return fields.String(
        required=True, validate=[validate.Length(max=MAX_TEXT_LENGTH), refuse_unstorable]
    )


class CheckoutSchema(Schema):
    """Licenses one process holds, as the license server printed it."""

    username = _name()
    lead_host = _name()
    count = Count(required=True)


# More checkouts than this in one feature's report is not a license server's output.
MAX_CHECKOUTS = 100_000


class FeatureReportSchema(Schema):
    """One feature's usage as the cluster's agent read it from the license server."""

    product_name = Text(required=True, metadata={"example": "abaqus"})
    feature_name = Text(required=True, metadata={"example": "abaqus"})
    total = Count(metadata={"description": "Required when status is ok"})
    used = Count(metadata={"description": "Required when status is ok"})
    status = fields.String(load_default="ok", validate=validate.OneOf(REPORT_STATUSES))
    interval = BoundedInteger(
        minimum=1,
        metadata={
            "description": "Seconds between the agent's reconcile cycles: the report is fresh "
            "for LM_REPORT_FRESH_INTERVALS of them (60 s when not stated)",
            "example": 60,
        },
    )
    reservation = Count(
        metadata={"description": "Licenses the agent's Slurm reservation holds (history)"}
    )
    demand = Count(
        metadata={"description": "Licenses wanted by the cluster's jobs pending for licenses"}
    )
    expires = fields.Date(
        metadata={"description": "Expiry date the server printed (9999-12-31: never expires)"}
    )
    checkouts = fields.List(
        fields.Nested(CheckoutSchema),
        validate=validate.Length(max=MAX_CHECKOUTS),
        metadata={"description": "Who holds the licenses now (kept in the usage history)"},
    )

    @validates_schema(pass_collection=True)
    def bounded(self, reports: Any, many: bool, **kwargs: Any) -> None:
        """A report is bounded (MAX_REPORT_ENTRIES): 422 naming the limit."""
        if many and len(reports) > MAX_REPORT_ENTRIES:
            raise ValidationError(
                f"At most {MAX_REPORT_ENTRIES} entries per usage report, got {len(reports)}."
            )

    @validates_schema
    def counts_when_read(self, report: dict[str, Any], **kwargs: Any) -> None:
        """A server that was read gives both counts; an unreachable or unparsable one keeps the
        last values."""
        if report.get("status") == "ok":
            missing = [field for field in ("total", "used") if field not in report]
            if missing:
                raise ValidationError({field: ["Required when status is ok."] for field in missing})


class FeatureUpdateSchema(PartialUpdate, FeatureSchema):
    pass
