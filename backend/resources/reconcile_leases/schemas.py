"""Reconcile lease payloads: who asks for the cluster's lease and for how long."""

from marshmallow import Schema, fields, validate

from backend.resources.fields import Text

# Long enough for any reconcile interval (cron runs at most hourly), short enough that a typo
# cannot block a cluster for days.
MAX_TTL_SECONDS = 3600


class LeaseRequestSchema(Schema):
    holder = Text(
        required=True,
        metadata={"description": "Who asks: unique per agent process", "example": "ctl1:812:ab12"},
    )
    ttl = fields.Float(
        required=True,
        validate=validate.Range(min=1, max=MAX_TTL_SECONDS),
        metadata={"description": "Seconds the lease lasts unless renewed", "example": 30},
    )
    takeover_of = Text(
        metadata={
            "description": "Take the lease over from this holder, only if it let it expire",
            "example": "ctl1:812:ab12",
        }
    )


class LeaseReleaseSchema(Schema):
    holder = Text(required=True, metadata={"example": "ctl1:812:ab12"})


class LeaseSchema(Schema):
    cluster_client_id = fields.String()
    holder = fields.String()
    acquired_at = fields.DateTime()
    expires_at = fields.DateTime()
