"""DSLS `DSLicSrv -admin` output of `connect HOST PORT` then `getLicenseUsage -csv`.

The CSV has one row per license entry, repeated once per checkout of that entry:

    Editor,EditorId,Feature,Model,...,Customer ID,Count,Inuse,Tokens,Casual Usage (mn),Host,User,...
    Dassault Systemes,5E756A80,SRU,...,2374,1559,493,,nid001626 (263.0)/127.0.0.1,user_2,...

Every column before Count identifies a license entry: its Count and Inuse are taken once, and the
entries of one feature (other releases, other customers) add up. Rows with a user and no queue
position are checkouts of Tokens tokens; the host is the name before " (" and "/".
Columns are found by name, so versions that add or move columns still parse.
"""

from __future__ import annotations

import csv
import re

from agent.parsers.usage import Checkout, ServerUsage, UsageTable

_HEADER_START = "Editor,EditorId,"
_QUEUED = "Queue Position"
_HOST_NAME = re.compile(r"[^\s/(]+")
_ERROR = re.compile(
    r"^.*(?:cannot|error|not connected|failed|refused).*$", re.IGNORECASE | re.MULTILINE
)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if _HEADER_START in line), None)
    if header_at is None:
        return table.result(text, _ERROR, "DSLicSrv")
    header_line = lines[header_at]
    columns = next(csv.reader([header_line[header_line.index(_HEADER_START) :]]))
    try:
        feature_at, count_at, inuse_at = (columns.index(c) for c in ("Feature", "Count", "Inuse"))
    except ValueError:
        return table.result(text, _ERROR, "DSLicSrv")
    optional = {name: _index(columns, name) for name in ("Tokens", "Host", "User", _QUEUED)}
    seen_entries: set[tuple[str, ...]] = set()
    for row in csv.reader(lines[header_at + 1 :]):
        if len(row) <= inuse_at or not (row[count_at].isdigit() and row[inuse_at].isdigit()):
            continue
        name = row[feature_at]
        entry = (name, *row[:count_at])
        if entry in seen_entries:
            pool = table.features[name]
        else:
            seen_entries.add(entry)
            pool = table.add_pool(name, int(row[count_at]), int(row[inuse_at]))
        checkout = _checkout(row, optional)
        if checkout is not None:
            pool.uses.append(checkout)
    return table.result(text, _ERROR, "DSLicSrv")


def _index(columns: list[str], name: str) -> int | None:
    return columns.index(name) if name in columns else None


def _field(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _checkout(row: list[str], columns: dict[str, int | None]) -> Checkout | None:
    """The checkout a row describes; None for a row of an idle entry or of a queued request."""
    user, tokens = _field(row, columns["User"]), _field(row, columns["Tokens"])
    if not user or not tokens.isdigit() or _field(row, columns[_QUEUED]):
        return None
    host = _HOST_NAME.match(_field(row, columns["Host"]))
    return Checkout(user, host.group() if host else "", int(tokens))
