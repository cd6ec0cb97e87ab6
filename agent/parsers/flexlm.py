"""FlexLM / FlexNet `lmutil lmstat -a` (or `-f FEATURE`) output.

    Users of abaqus:  (Total of 10 licenses issued;  Total of 4 licenses in use)
      "abaqus" v62.2, vendor: ABAQUSLM, expiry: 31-dec-2025
      floating license
        alice node01 /dev/tty (v62.2) (lic1/27000 101), start Thu 10/29 8:09, 3 licenses
        bob node02 node02 (v62.2) (lic1/27000 202), start Thu 10/29 8:09 (linger: 3600)
        carol node03 /dev/pts/1 (v62.2) (lic1/27000 303) queued for 2 licenses
          1 RESERVATION for HOST node05 (lic1/27000)

`used` is the server's own "in use" figure (it counts lingering licenses and reservations);
checkouts are the lines with a start time (a line without ", N licenses" holds one).
Queued users and RESERVATION lines hold nothing a job could release, so they are not checkouts.
A feature header with an error or without a count (uncounted, node-locked) is not a floating
pool and is skipped; a feature printed twice (two vendor daemons, two license files) adds up.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, FeatureUsage, UsageTable

# One pattern for both kinds of line, so the whole output is scanned by the regex engine in one
# pass (a busy server prints tens of thousands of checkout lines).
_LINE = re.compile(
    r"^(?:Users of (?P<name>\S+?):[ \t]+\((?P<detail>[^\n]*)\)[ \t\r]*$"
    r"|[ \t]+(?P<user>\S[^\n]*?) (?P<host>\S+) \S+ \([^()\n]*\) \([^()\n]*\), start [^,(\n]*"
    r"(?:, (?P<count>\d+) licenses?)?)",
    re.MULTILINE,
)
_COUNTED = re.compile(
    r"Total of (?P<total>\d+) licenses? issued;\s+Total of (?P<used>\d+) licenses? in use"
)
_ERROR = re.compile(
    r"^.*(?:error|cannot|can't|not running|is down|license server DOWN).*$",
    re.IGNORECASE | re.MULTILINE,
)


def parse(text: str) -> dict[str, FeatureUsage]:
    table = UsageTable()
    current: FeatureUsage | None = None
    for line in _LINE.finditer(text):
        name = line["name"]
        if name is not None:
            counted = _COUNTED.search(line["detail"])
            current = None
            if counted:
                current = table.add_pool(name, int(counted["total"]), int(counted["used"]))
        elif current is not None:
            count = int(line["count"] or 1)
            current.uses.append(Checkout(line["user"], line["host"], count))
    return table.result(text, _ERROR, "lmstat")
