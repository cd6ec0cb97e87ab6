"""The data every parser returns, and the bookkeeping they share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Checkout:
    """Licenses one process holds: who, from which host (a job's lead host), how many."""

    username: str
    lead_host: str
    count: int


@dataclass
class FeatureUsage:
    """What the license server says about one feature: pool size, tokens in use, and by whom."""

    total: int
    used: int
    uses: list[Checkout] = field(default_factory=list)


class ServerUnreadable(Exception):
    """The output shows the server could not be read (down, refused, garbled): try a mirror."""


class UsageTable:
    """Collects pools by feature name as printed.

    Several pools of one name (license versions, OLicense license blocks, DSLS license entries)
    are one pool for Slurm, so they add up.
    """

    def __init__(self) -> None:
        self.features: dict[str, FeatureUsage] = {}

    def add_pool(self, name: str, total: int, used: int) -> FeatureUsage:
        usage = self.features.get(name)
        if usage is None:
            usage = self.features[name] = FeatureUsage(total=total, used=used)
        else:
            usage.total += total
            usage.used += used
        return usage

    def result(self, text: str, error: re.Pattern[str], tool: str) -> dict[str, FeatureUsage]:
        """The features found; ServerUnreadable quoting the tool's error line if there are none."""
        if self.features:
            return self.features
        raise ServerUnreadable(first_error_line(text, error, tool))


def first_error_line(text: str, error_pattern: re.Pattern[str], tool: str) -> str:
    """The line that explains why there is no data, or a generic reason naming the tool."""
    match = error_pattern.search(text)
    if match:
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.start())
        line = text[line_start : line_end if line_end >= 0 else len(text)].strip()
        return f"{tool}: {line}"
    if not text.strip():
        return f"{tool}: empty output"
    return f"{tool}: no license usage found in the output"
