"""License server payloads."""

import re

from marshmallow import Schema, ValidationError, fields, validate, validates

from backend.resources.fields import PartialUpdate, RowId, Text

# Host names, IPv4 and IPv6 addresses; no spaces, schemes, paths or user parts.
HOST_PATTERN = re.compile(r"[A-Za-z0-9._:\[\]-]+")


class LicenseServerSchema(Schema):
    id = fields.Integer(dump_only=True)
    config_id = RowId(required=True, metadata={"example": 1})
    host = Text(required=True, metadata={"example": "licserv0001"})
    port = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, 65535), metadata={"example": 1234}
    )

    @validates("host")
    def validate_host(self, host: str, **kwargs: object) -> None:
        if not HOST_PATTERN.fullmatch(host):
            raise ValidationError("Not a host name or IP address.")


class LicenseServerUpdateSchema(PartialUpdate, LicenseServerSchema):
    pass
