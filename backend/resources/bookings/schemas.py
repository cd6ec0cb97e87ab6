"""Booking payloads: what a client sends to book licenses and what it reads back."""

from marshmallow import Schema, fields

from backend.resources.fields import BoundedInteger, RowId


class Quantity(BoundedInteger):
    """A number of licenses to book: at least one."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(minimum=1, metadata={"example": 2}, **kwargs)


class BookingCreateSchema(Schema):
    job_id = RowId(required=True, metadata={"example": 1})
    feature_id = RowId(required=True, metadata={"example": 1})
    quantity = Quantity(required=True)


class BookingSchema(Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    feature_id = fields.Integer()
    product_feature = fields.String(metadata={"example": "abaqus.abaqus"})
    quantity = fields.Integer()
    created_at = fields.DateTime()
