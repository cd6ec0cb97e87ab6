"""Product payloads."""

from marshmallow import Schema, fields

from backend.resources.fields import PartialUpdate, Text


class ProductSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, metadata={"example": "abaqus"})


class ProductUpdateSchema(PartialUpdate, ProductSchema):
    pass
