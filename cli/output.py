"""Readable text for people (aligned tables, one record per screen) and JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cli.resources import RESOURCES_BY_COMMAND, Column, Resource


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def table(columns: Sequence[Column], records: Sequence[Mapping[str, Any]]) -> str:
    """Left-aligned columns, as wide as their widest cell, under an upper-case header."""
    rows = [[column.header for column in columns]]
    rows += [[column.cell(record) for column in columns] for record in records]
    widths = [max(len(row[index]) for row in rows) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def listing(resource: Resource, records: Sequence[Mapping[str, Any]], pagination: Any) -> str:
    """The table of one page and a footer saying where the page is in the whole list."""
    total = pagination.get("total") if isinstance(pagination, Mapping) else None
    if not records:
        return (
            f"no {resource.plural} on this page, {total} in all"
            if total
            else f"no {resource.plural}"
        )
    if total is not None:
        total = pagination["total"]
        where = f"page {pagination.get('page', 1)} of {pagination.get('total_pages', 1)}, "
        count = f"{where}{total} {resource.noun(total)} in all"
    else:
        count = f"{len(records)} {resource.noun(len(records))}"
    return f"{table(resource.columns, records)}\n\n{count}"


def record(resource: Resource, item: Mapping[str, Any]) -> str:
    """One record as `LABEL: value` lines, then a table for each list it holds."""
    nested = resource.nested or {}
    scalar_columns = [column for column in resource.columns if column.key not in nested]
    width = max(len(column.header) for column in scalar_columns) + 1
    lines = [
        f"{(column.header + ':').ljust(width)} {column.cell(item)}" for column in scalar_columns
    ]
    for key, command in nested.items():
        held = RESOURCES_BY_COMMAND[command]
        children = item.get(key) or []
        body = table(held.columns, children) if children else "(none)"
        lines += ["", f"{held.plural.capitalize()}:", body]
    return "\n".join(lines)
