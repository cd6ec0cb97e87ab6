"""RLM `rlmutil rlmstat -a -p` output.

Pools come from the "license pool status" sections, checkouts from the "license usage status"
sections; every line may be indented (tabs, spaces) or not, depending on the RLM version:

    converge_super v3.0
        count: 1000, # reservations: 0, inuse: 93, exp: 31-jan-2022
    ...
    converge_super v3.0: asdj13@myserver.example.com 29/0 at 11/01 09:01  (handle: 15a)

A product served in several pools (versions, expiry dates, license files) or by several ISV
servers is one pool: the counts add up, and a checkout belongs to the product whatever version
it names. A pool whose count is not a number (uncounted) is not a floating pool and is skipped.
Usage lines of queued or roaming-in-progress requests are not checkouts. An ISV server that is
down prints no sections: its products are simply not in the output.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, ServerUsage, UsageTable

_POOL_HEADER = re.compile(r"\s*(?P<name>[^\s:]\S*?):? v(?P<version>[^\s:]+)\s*$")
_POOL_COUNTS = re.compile(
    r"\s*count:\s*(?P<count>[^,\s]+),.*?\binuse:\s*(?P<inuse>\d+)", re.IGNORECASE
)
_USAGE = re.compile(
    r"\s*(?P<name>\S+) v[^\s:]+: (?P<user>[^@\s]+)@(?P<host>[^\s:]+)\S*\s+(?P<count>\d+)(?:/\d+)?"
    r"\s+at\s"
)
_NOT_HELD = re.compile(r"queued|waiting|roaming in progress", re.IGNORECASE)
_ERROR = re.compile(
    r"^.*(?:error|cannot|can't|not running|no license server).*$", re.IGNORECASE | re.MULTILINE
)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    usages: list[re.Match[str]] = []
    pool_name: str | None = None
    for line in text.split("\n"):
        if not line or line.isspace():
            continue
        usage = _USAGE.match(line)
        if usage:
            if not _NOT_HELD.search(line):
                usages.append(usage)
            pool_name = None
            continue
        counts = _POOL_COUNTS.match(line)
        if counts:
            if pool_name is not None and counts["count"].isdigit():
                table.add_pool(pool_name, int(counts["count"]), int(counts["inuse"]))
            pool_name = None
            continue
        header = _POOL_HEADER.match(line)
        pool_name = header["name"] if header else None
    # Usage sections may come before the pool sections of another ISV server: match them last.
    for usage in usages:
        feature = table.features.get(usage["name"])
        if feature is not None:
            feature.uses.append(Checkout(usage["user"], usage["host"], int(usage["count"])))
    return table.result(text, _ERROR, "rlmstat")
