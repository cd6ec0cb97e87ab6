"""Configuration payloads: a configuration shows its license servers and features."""

from marshmallow import Schema, fields, validate

from backend.resources.features.schemas import FeatureSchema
from backend.resources.fields import Count, PartialUpdate, Text
from backend.resources.license_servers.schemas import LicenseServerSchema
from lm_common.facts import SERVER_TYPES


class ConfigurationSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, metadata={"example": "configuration-name"})
    cluster_client_id = Text(required=True, metadata={"example": "cluster-client-id"})
    grace_time = Count(
        required=True,
        metadata={
            "example": 60,
            "description": "Seconds a booking is kept at least, even if no checkout is seen",
        },
    )
    booking_max_age = Count(
        metadata={
            "example": 1800,
            "description": "Seconds after which a booking whose job was not seen checking out "
            "is dropped; never before grace_time (default 1800)",
        },
    )
    type = fields.String(
        required=True, validate=validate.OneOf(SERVER_TYPES), metadata={"example": "flexlm"}
    )
    license_servers = fields.List(fields.Nested(LicenseServerSchema), dump_only=True)
    features = fields.List(fields.Nested(FeatureSchema), dump_only=True)


class ConfigurationUpdateSchema(PartialUpdate, ConfigurationSchema):
    pass
