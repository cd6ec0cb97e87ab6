"""OLicense `olixtool -sv HOST:PORT` output.

Each license block lists modules; floating modules may be followed by their holders:

      Name; LicenseType; FloatCount; Expiration
      --------------------------------------------
      ftire_adams;         FreeFloating;	3;	2022-12-31 23:59:59;
        3 FloatsLockedBy:
          sbhyma@RD0087712 #1

One module in several license blocks is one pool (the FloatCounts add up). Only floating modules
form a pool a cluster can share: node- or user-locked modules are skipped. Holders listed under
any other heading than "FloatsLockedBy" (queued or waiting requests) are not checkouts.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, FeatureUsage, ServerUsage, UsageTable

# Indentation varies between versions (and is lost by some copies): none is required.
_MODULE = re.compile(r"\s*(?P<name>[^;\s]+);\s*(?P<type>[^;]*?);\s*(?P<count>\d+);")
_HOLDERS = re.compile(r"\s*(?P<count>\d+) (?P<kind>\w+)By:")
_HOLDER = re.compile(r"\s*(?P<user>[^@\s]+)@(?P<host>\S+) #(?P<count>\d+)")
_ERROR = re.compile(r"^.*(?:OlComm \d+|error|cannot|failed).*$", re.IGNORECASE | re.MULTILINE)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    current: FeatureUsage | None = None
    holders_are_checkouts = False
    for line in text.splitlines():
        module = _MODULE.match(line)
        if module:
            floating = "float" in module["type"].lower()
            current = table.add_pool(module["name"], int(module["count"]), 0) if floating else None
            holders_are_checkouts = False
            continue
        if current is None:
            continue
        holders = _HOLDERS.match(line)
        if holders:
            holders_are_checkouts = holders["kind"] == "FloatsLocked"
            if holders_are_checkouts:
                current.used += int(holders["count"])
            continue
        holder = _HOLDER.match(line)
        if holder and holders_are_checkouts:
            current.uses.append(Checkout(holder["user"], holder["host"], int(holder["count"])))
        elif line.startswith("==="):
            current = None
    return table.result(text, _ERROR, "olixtool")
