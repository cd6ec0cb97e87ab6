"""RLM `rlmutil rlmstat -a -p` output.

Pools come from the "license pool status" sections, checkouts from the "license usage status"
sections:

    converge_super v3.0
        count: 1000, # reservations: 0, inuse: 93, exp: 31-jan-2022
    ...
    converge_super v3.0: asdj13@node1.example.com 29/0 at 11/01 09:01  (handle: 15a)

A product served in several versions (or by several ISV servers) is one pool: the counts add up.
A pool whose count is not a number (uncounted) is not a floating pool and is skipped. Usage lines
of queued or roaming-in-progress requests are not checkouts.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, FeatureUsage, UsageTable

_POOL_HEADER = re.compile(r"\s+(?P<name>\S+) v(?P<version>[^\s:]+)\s*$")
_POOL_COUNTS = re.compile(r"\s+count: (?P<count>\w+), # reservations: \d+, inuse: (?P<inuse>\d+)")
_USAGE = re.compile(
    r"\s+(?P<name>\S+) v[^\s:]+: (?P<user>[^@\s]+)@(?P<host>\S+) (?P<count>\d+)/\d+ at "
)
_NOT_HELD = re.compile(r"queued|waiting", re.IGNORECASE)
_ERROR = re.compile(
    r"^.*(?:error|cannot|can't|not running|no license server).*$", re.IGNORECASE | re.MULTILINE
)


def parse(text: str) -> dict[str, FeatureUsage]:
    table = UsageTable()
    pool_name: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        usage = _USAGE.match(line)
        if usage:
            feature = table.features.get(usage["name"])
            if feature is not None and not _NOT_HELD.search(line):
                feature.uses.append(Checkout(usage["user"], usage["host"], int(usage["count"])))
            continue
        counts = _POOL_COUNTS.match(line)
        if counts and pool_name is not None:
            if counts["count"].isdigit():
                table.add_pool(pool_name, int(counts["count"]), int(counts["inuse"]))
            pool_name = None
            continue
        header = _POOL_HEADER.match(line)
        pool_name = header["name"] if header else None
    return table.result(text, _ERROR, "rlmstat")
