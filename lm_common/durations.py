"""Durations as people write them (`90`, `90s`, `5m`, `1h`, `7d`, `2w`): the API's `step` and
lm-cli's `--since` read them alike. Standard library only."""

from __future__ import annotations

import re

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw]?)\s*$")


def parse_duration(value: str) -> int:
    """Seconds; ValueError naming the accepted forms otherwise."""
    match = DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 300, 5m, 1h or 7d")
    return int(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
