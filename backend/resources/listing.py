"""Search, sort and pagination shared by every list endpoint.

A resource describes its list once with a `Listing` (which columns `search` looks into, which
`sort_field` values exist); the view then parses `listing.args_schema` with `@blp.arguments(...,
location="query")`, takes `pagination_parameters` from `@blp.paginate()` and answers
`paginate(listing.apply(statement, list_args), pagination_parameters)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flask_smorest.pagination import PaginationParameters
from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from backend.extensions import db
from backend.resources.fields import Text

SORT_ORDERS = ("ascending", "descending")
# Beyond this offset PostgreSQL's bigint OFFSET overflows; such a page is past the end anyway.
MAX_OFFSET = 2**53


@dataclass(frozen=True)
class Listing:
    """How one resource's list is searched and sorted.

    `sortable` maps each public `sort_field` value to its column and must hold "id": the id also
    breaks ties so that pages never overlap or skip rows. `searchable` are the text columns that
    `search` matches case-insensitively (columns of joined tables need the join in the statement).
    """

    resource: str
    sortable: Mapping[str, ColumnElement[Any] | QueryableAttribute[Any]]
    searchable: tuple[ColumnElement[str] | QueryableAttribute[str], ...]

    def __post_init__(self) -> None:
        if "id" not in self.sortable:
            raise ValueError(f"{self.resource}: sortable columns must include 'id'")

    @property
    def searched_fields(self) -> list[str]:
        """Each searched column once: joined tables' columns by `table.column` (products.name)."""
        own_table = self.sortable["id"].table
        names = (
            str(column.key) if column.table is own_table else f"{column.table.name}.{column.key}"
            for column in self.searchable
        )
        return list(dict.fromkeys(names))

    @cached_property
    def args_schema(self) -> type[Schema]:
        """The query-string schema (search, sort_field, sort_order) of this resource's list."""
        valid_fields = tuple(self.sortable)
        return Schema.from_dict(
            {
                "search": Text(
                    metadata={
                        "description": "Case-insensitive text matched against "
                        + ", ".join(self.searched_fields)
                    },
                ),
                "sort_field": fields.String(
                    load_default="id",
                    validate=validate.OneOf(
                        valid_fields,
                        error="Unknown sort field {input!r}; valid sort fields: {choices}.",
                    ),
                    metadata={"description": "One of " + ", ".join(valid_fields)},
                ),
                "sort_order": fields.String(
                    load_default="ascending",
                    validate=validate.OneOf(
                        SORT_ORDERS, error="sort_order must be one of: {choices}."
                    ),
                ),
            },
            name=f"{self.resource}ListArgs",
        )

    def apply(self, statement: Select[Any], list_args: Mapping[str, Any]) -> Select[Any]:
        """Filter `statement` by `search` and order it by `sort_field`/`sort_order`, id last."""
        term = list_args.get("search")
        if term:
            statement = statement.where(
                or_(*(column.icontains(term, autoescape=True) for column in self.searchable))
            )
        descending = list_args.get("sort_order") == "descending"
        sort_column = self.sortable[list_args.get("sort_field", "id")]
        id_column = self.sortable["id"]
        ordering = [sort_column.desc() if descending else sort_column.asc()]
        if sort_column is not id_column:
            ordering.append(id_column.desc() if descending else id_column.asc())
        return statement.order_by(*ordering)


def paginate(statement: Select[Any], pagination_parameters: PaginationParameters) -> list[Any]:
    """Run one page of `statement` and tell flask-smorest the total count (X-Pagination)."""
    count_statement = select(func.count()).select_from(statement.order_by(None).subquery())
    pagination_parameters.item_count = db.session.scalar(count_statement)
    if pagination_parameters.first_item >= min(pagination_parameters.item_count, MAX_OFFSET):
        return []
    page = statement.offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)
    return list(db.session.scalars(page))
