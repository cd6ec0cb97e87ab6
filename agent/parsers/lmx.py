"""LM-X `lmxendutil -licstat -host HOST -port PORT` output.

    Feature: GlobalZoneEU Version: 21.0 Vendor: ALTAIR
    ...
    40000 of 1000003 license(s) used:

    15000 license(s) used by VRAAFG@RD0082879 [138.106.159.158]

A feature in several versions (several "Feature:" blocks of one name) is one pool. A block
that prints an error instead of its "N of M license(s) used" line makes that feature
unreadable (unless another version of it was read).
Queued requests ("license(s) queued by") are not checkouts.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, FeatureUsage, ServerUsage, UsageTable

_FEATURE = re.compile(r"Feature: (?P<name>\S+)")
_LICENSES = r"licen[cs]e(?:\(s\)|s)?"
_COUNTS = re.compile(rf"(?P<used>\d+) of (?P<total>\d+) {_LICENSES} used")
_CHECKOUT = re.compile(rf"(?P<count>\d+) {_LICENSES} used by (?P<user>[^@\s]+)@(?P<host>[^\s\[]+)")
_ERROR = re.compile(
    r"^.*(?:error|cannot|failed|no license server|not available).*$", re.IGNORECASE | re.MULTILINE
)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    name: str | None = None
    current: FeatureUsage | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith("Feature: "):
            match = _FEATURE.match(line)
            name, current = (match["name"] if match else None), None
        elif line.startswith("---"):
            name = current = None
        elif current is None:
            counts = _COUNTS.match(line)
            if counts and name is not None:
                current = table.add_pool(name, int(counts["total"]), int(counts["used"]))
            elif name is not None and "error" in line.lower():
                table.add_error(name, line)
        else:
            checkout = _CHECKOUT.match(line)
            if checkout:
                current.uses.append(
                    Checkout(checkout["user"], checkout["host"], int(checkout["count"]))
                )
    return table.result(text, _ERROR, "lmxendutil")
