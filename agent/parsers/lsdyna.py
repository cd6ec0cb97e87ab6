"""LS-DYNA (LSTC license manager) `lstc_qrun -s PORT@HOST -R` output.

    PROGRAM          EXPIRATION CPUS  USED   FREE    MAX | QUEUE
    ---------------- ----------      ----- ------ ------ | -----
    MPPDYNA          12/30/2022          -     60    500 |     0
     dvds3g     59005@n-c13.com  80
    LS-DYNA          12/30/2022          0     60    500 |     0
                       LICENSE GROUP   440     60    500 |     0

Programs listed above a LICENSE GROUP line draw from that group's pool, so each of them reports
the group's MAX as total and the group's USED as used. A program outside any group reports its
own MAX, and MAX - FREE as used. Process lines (`user pid@host count`) under a program are its
checkouts; lines outside the license table (the queue listing of other lstc_qrun modes) are not.
"""

from __future__ import annotations

import re

from agent.parsers.usage import Checkout, FeatureUsage, ServerUsage, UsageTable

# PROGRAM EXPIRATION [CPUS] USED FREE MAX [| QUEUE]: older versions print no queue column, and
# the expiration may be a word (permanent) rather than a date.
_PROGRAM = re.compile(
    r"(?P<name>\S+)\s+\S+\s+\S+\s+(?P<free>\d+)\s+(?P<max>\d+)(?:\s*\|\s*\d+)?\s*$"
)
_GROUP = re.compile(r"\s*LICENSE GROUP\s+(?P<used>\d+)\s+\d+\s+(?P<max>\d+)(?:\s*\|\s*\d+)?\s*$")
_PROCESS = re.compile(r"\s+(?P<user>\S+)\s+\d+@(?P<host>\S+)\s+(?P<count>\d+)\s*$")
_ERROR = re.compile(r"^.*(?:error|cannot|failed|refused).*$", re.IGNORECASE | re.MULTILINE)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    # Rows seen since the last LICENSE GROUP line, by program: their group (if one follows) decides.
    pending = UsageTable()
    current: FeatureUsage | None = None
    in_license_table = False
    for line in text.splitlines():
        if line.startswith("PROGRAM ") and "EXPIRATION" in line:
            in_license_table = True
            continue
        if not in_license_table or not line.strip():
            continue
        group = _GROUP.match(line)
        if group:
            for name, row in pending.features.items():
                pool = table.add_pool(name, int(group["max"]), int(group["used"]))
                pool.uses.extend(row.uses)
            pending, current = UsageTable(), None
            continue
        program = _PROGRAM.match(line)
        if program:
            total = int(program["max"])
            current = pending.add_pool(program["name"], total, max(0, total - int(program["free"])))
            continue
        process = _PROCESS.match(line)
        if process and current is not None:
            current.uses.append(Checkout(process["user"], process["host"], int(process["count"])))
    for name, row in pending.features.items():
        table.add_pool(name, row.total, row.used).uses.extend(row.uses)
    return table.result(text, _ERROR, "lstc_qrun")
