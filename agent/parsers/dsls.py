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

# The header's first column (Editor in the versions seen; Feature where there is no Editor); it
# may follow an `admin >` prompt on the same line.
_HEADER_START = re.compile(r"(?:Editor|Feature),", re.IGNORECASE)
_QUEUED = "queue position"
_HOST_NAME = re.compile(r"[^\s/(]+")
_ERROR = re.compile(
    r"^.*(?:cannot|error|not connected|failed|refused).*$", re.IGNORECASE | re.MULTILINE
)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    lines = text.splitlines()
    found = _header(lines)
    if found is None:
        return table.result(text, _ERROR, "DSLicSrv")
    header_at, columns = found
    feature_at, count_at, inuse_at = (columns[c] for c in ("feature", "count", "inuse"))
    optional = {name: columns.get(name) for name in ("tokens", "host", "user", _QUEUED)}
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


def _header(lines: list[str]) -> tuple[int, dict[str, int]] | None:
    """The CSV header's line and its columns (lowercase name -> index): the first line naming
    at least Feature, Count and Inuse, wherever the other columns are."""
    for at, line in enumerate(lines):
        start = _HEADER_START.search(line)
        if start is None:
            continue
        names = next(csv.reader([line[start.start() :]]))
        columns: dict[str, int] = {}
        for index, name in enumerate(names):
            columns.setdefault(name.strip().lower(), index)
        if {"feature", "count", "inuse"} <= columns.keys():
            return at, columns
    return None


def _field(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _checkout(row: list[str], columns: dict[str, int | None]) -> Checkout | None:
    """The checkout a row describes; None for a row of an idle entry or of a queued request."""
    user, tokens = _field(row, columns["user"]), _field(row, columns["tokens"])
    if not user or not tokens.isdigit() or _field(row, columns[_QUEUED]):
        return None
    host = _HOST_NAME.match(_field(row, columns["host"]))
    return Checkout(user, host.group() if host else "", int(tokens))
