"""FlexLM / FlexNet `lmutil lmstat -a` (or `-f FEATURE`) output.

    Users of abaqus:  (Total of 10 licenses issued;  Total of 4 licenses in use)
      "abaqus" v62.2, vendor: ABAQUSLM, expiry: 31-dec-2025
      floating license
        alice node01 /dev/tty (v62.2) (lic1/27000 101), start Thu 10/29 8:09, 3 licenses
        bob node02 node02 (v62.2) (lic1/27000 202), start Thu 10/29 8:09 (linger: 3600)
        carol node03 /dev/pts/1 (v62.2) (lic1/27000 303) queued for 2 licenses
          1 RESERVATION for HOST node05 (lic1/27000)

Feature headers: `used` is the server's own "in use" figure (it counts lingering licenses and
reservations). Older lmstat prints only "(Total of N licenses available)": then `used` is what
the checkouts listed hold. "(Error: ...)" makes that feature unreadable; a header without a
count (uncounted, node-locked) is not a floating pool and is skipped. A feature printed twice
(two vendor daemons, two license files) adds up.

Checkout lines are the lines with a start time: "USER HOST [DISPLAY] [(vVERSION)] (SERVER/PORT
HANDLE), start DATE[, N licenses][, anything]" (no count means one license). The display is a
terminal, the host again, an X display, nothing, or free text with blanks (Windows); user names
may hold blanks too, so user and host are found around the display (see _user_and_host).
Queued users and RESERVATION lines hold nothing a job could release, so they are not checkouts.
The version line's expiry date is kept (the earliest of the pools of one name); `permanent` and
FlexLM's `1-jan-0` are kept as date.max (never).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from agent.parsers.usage import Checkout, FeatureUsage, ServerUsage, UsageTable

_HEADER = re.compile(r"Users of (?P<name>\S+?):\s+\((?P<detail>.*?)\)?$")
_COUNTED = re.compile(
    r"Total of (?P<total>\d[\d,]*) licenses? issued;\s*Total of (?P<used>\d[\d,]*) licenses? in use"
)
_AVAILABLE = re.compile(r"Total of (?P<total>\d[\d,]*) licenses? available")
_NOT_FLOATING = re.compile(r"uncounted|node-?locked", re.IGNORECASE)
# "who" is everything before the optional (vVERSION) and the (SERVER/PORT HANDLE) groups.
_CHECKOUT = re.compile(
    r"\s*(?P<who>\S.*?)\s+(?:\(v[^()]*\)\s+)?\([^()]*\),?\s+start\b(?P<rest>.*)$"
)
_COUNT = re.compile(r"\b(?P<count>\d+) licenses?\b")
# The version line under a header: `"abaqus" v62.2, vendor: ABAQUSLM, expiry: 31-dec-2025`.
_EXPIRY = re.compile(r"\bexpiry:\s*(?P<date>\S+)", re.IGNORECASE)
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_ERROR = re.compile(
    r"^.*(?:error|cannot|can't|not running|is down|license server DOWN).*$",
    re.IGNORECASE | re.MULTILINE,
)


def parse(text: str) -> ServerUsage:
    table = UsageTable()
    current: FeatureUsage | None = None
    used_from_checkouts = False  # an older header without an in-use figure
    for line in text.split("\n"):
        if line.lstrip().startswith("Users of "):
            current, used_from_checkouts = _feature(table, line.lstrip())
            continue
        if current is not None and (expiry := _EXPIRY.search(line)):
            current.note_expiry(_expiry_date(expiry["date"]))
            continue
        if current is None or "start" not in line:
            continue
        checkout = _CHECKOUT.match(line)
        if checkout is None:
            continue
        count_match = _COUNT.search(checkout["rest"])
        count = int(count_match["count"]) if count_match else 1
        user, host = _user_and_host(checkout["who"].split())
        current.uses.append(Checkout(user, host, count))
        if used_from_checkouts:
            current.used += count
    return table.result(text, _ERROR, "lmstat")


def _feature(table: UsageTable, line: str) -> tuple[FeatureUsage | None, bool]:
    """The pool a "Users of" header opens (None when it is no floating pool), and whether its
    in-use figure must come from the checkouts listed under it."""
    header = _HEADER.match(line)
    if header is None:
        return None, False
    name, detail = header["name"], header["detail"]
    counted = _COUNTED.search(detail)
    if counted:
        return table.add_pool(name, _number(counted["total"]), _number(counted["used"])), False
    available = _AVAILABLE.search(detail)
    if available:
        return table.add_pool(name, _number(available["total"]), 0), True
    if not _NOT_FLOATING.search(detail) or "error" in detail.lower():
        table.add_error(name, detail)
    return None, False


def _expiry_date(text: str) -> date | None:
    """`31-dec-2025` -> that day; `permanent` and FlexLM's `1-jan-0` -> date.max (never);
    anything else -> None (not understood: nothing kept)."""
    word = text.strip().rstrip(",").lower()
    if word.startswith("permanent") or word.endswith("-0") or word.endswith("-0000"):
        return date.max
    try:
        return datetime.strptime(word, "%d-%b-%Y").date()
    except ValueError:
        return None


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _user_and_host(tokens: list[str]) -> tuple[str, str]:
    """User and host from "USER HOST [DISPLAY]", where USER and DISPLAY may hold blanks.

    1. A display that is a terminal (/dev/...), repeats the host, or is the host's X display
       (host:0.0) marks the host just before it: everything before the host is the user.
    2. A display of free text (a window title with characters no host name has) marks the host
       as the last host-name-like field before it: "John Doe ws-17 |)8<f Z)=Y".
    3. Otherwise the first two fields.
    """
    if len(tokens) < 2:
        return (tokens[0] if tokens else ""), ""
    for at in range(1, len(tokens) - 1):
        host, display = tokens[at], tokens[at + 1]
        if display.startswith("/dev/") or display == host or display.startswith(host + ":"):
            return " ".join(tokens[:at]), host
    for at in range(len(tokens) - 2, 0, -1):
        free_text_display = not all(_HOST_NAME.fullmatch(t) for t in tokens[at + 1 :])
        if free_text_display and _HOST_NAME.fullmatch(tokens[at]):
            return " ".join(tokens[:at]), tokens[at]
    return tokens[0], tokens[1]
