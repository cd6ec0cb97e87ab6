"""The data every parser returns, and the bookkeeping they share."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import date


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
    # The earliest expiry date the server printed for the pool: None when it printed none,
    # date.max when it printed that the license never expires. Left out of comparisons: tests
    # compare parsers on figures and checkouts.
    expires: date | None = field(default=None, compare=False)

    def note_expiry(self, day: date | None) -> None:
        if day is not None and (self.expires is None or day < self.expires):
            self.expires = day


@dataclass
class ServerUsage:
    """One tool output read: the features it shows, the features it shows an error for, and
    the figures that did not add up (already corrected conservatively; for the log)."""

    features: dict[str, FeatureUsage]
    unreadable: dict[str, str] = field(default_factory=dict)  # feature name -> error printed
    warnings: list[str] = field(default_factory=list)


class ServerUnreadable(Exception):
    """The output shows the server could not be read (down, refused, an error): try a mirror."""


class OutputNotUnderstood(ServerUnreadable):
    """The output shows neither usage nor an error: a format the parser does not know.

    Still fails closed like any unreadable server, but the admin must see it (a parser to fix,
    not a server to restart).
    """


class UsageTable:
    """Collects pools by feature name as printed.

    Several pools of one name (license versions, OLicense license blocks, DSLS license entries,
    several vendor daemons) are one pool for Slurm, so they add up.
    """

    def __init__(self) -> None:
        self.features: dict[str, FeatureUsage] = {}
        self.unreadable: dict[str, str] = {}

    def add_pool(self, name: str, total: int, used: int) -> FeatureUsage:
        usage = self.features.get(name)
        if usage is None:
            usage = self.features[name] = FeatureUsage(total=total, used=used)
        else:
            usage.total += total
            usage.used += used
        return usage

    def add_error(self, name: str, error: str) -> None:
        """The output printed an error instead of usage for this feature."""
        self.unreadable.setdefault(name, error.strip())

    def result(self, text: str, error: re.Pattern[str], tool: str) -> ServerUsage:
        """The features found, checked for consistency.

        No feature at all raises ServerUnreadable quoting the tool's error line, or
        OutputNotUnderstood when there is no error line either.
        """
        if not self.features:
            match = error.search(text)
            if match:
                raise ServerUnreadable(f"{tool}: {_line_at(text, match.start())}")
            if not text.strip():
                raise OutputNotUnderstood(f"{tool}: empty output")
            raise OutputNotUnderstood(f"{tool}: no license usage found in the output")
        warnings = [
            warning
            for name, usage in self.features.items()
            if (warning := _make_consistent(name, usage)) is not None
        ]
        unreadable = {n: e for n, e in self.unreadable.items() if n not in self.features}
        return ServerUsage(self.features, unreadable, warnings)


def _make_consistent(name: str, usage: FeatureUsage) -> str | None:
    """Correct figures that cannot all be true, towards more in use; say what was seen.

    Checkouts summing past the in-use figure mean the figure is stale or partial: the
    checkouts are what is held. More in use than the total is kept as it is (the pool is full:
    the booking rule then grants nothing).
    """
    checked_out = sum(checkout.count for checkout in usage.uses)
    notes = []
    if checked_out > usage.used:
        notes.append(f"checkouts sum to {checked_out}, more than {usage.used} in use: read as used")
        usage.used = checked_out
    if usage.used > usage.total:
        notes.append(f"{usage.used} in use of a total of {usage.total}: read as full")
    return f"{name}: {'; '.join(notes)}" if notes else None


def _line_at(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    return text[line_start : line_end if line_end >= 0 else len(text)].strip()


def decode_output(data: bytes) -> str:
    """A tool's output as text, whatever it was written in.

    Windows builds of some tools (or a wrapper script's redirection) write UTF-16, with or
    without a byte-order mark; the others write ASCII/UTF-8, sometimes with a BOM. Undecodable
    bytes become U+FFFD rather than an error: the parser decides whether the text makes sense.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    encoding = _bomless_utf16(data)
    if encoding:
        return data.decode(encoding, "replace")
    return data.decode("utf-8", "replace")


def _bomless_utf16(data: bytes) -> str | None:
    """utf-16-le/-be when most bytes at odd (even) offsets are NUL, as in UTF-16 ASCII text."""
    sample = data[:4096]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    if sample[1::2].count(0) > 0.9 * pairs:
        return "utf-16-le"
    if sample[0::2].count(0) > 0.9 * pairs:
        return "utf-16-be"
    return None


def normalize_text(text: str) -> str:
    """One form for every parser: `\\n` line ends, no trailing blanks, no BOM, no stray NULs.

    Handles text already decoded badly too: UTF-16 read as an 8-bit encoding shows a NUL after
    every character, so when NULs are that frequent they are dropped.
    """
    text = text.removeprefix("\ufeff")
    if "\x00" in text and text.count("\x00") * 3 > len(text):
        text = text.replace("\x00", "").lstrip("\ufeff\ufffdÿþ")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n"))
