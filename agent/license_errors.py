"""The catalogue of license-error texts the epilog looks for in a failed job's output.

Each vendor's licensing library prints its own words when a checkout fails for lack of a
license (all tokens taken, server down or unreachable). The catalogue ships with the agent;
admins add their own per product or feature in agent.yaml (`license_failures.rules[].patterns`),
which are searched the same way. Matching is case-insensitive and line by line, so no pattern
can run across lines or over more than MAX_LINE characters.

Only failures that may pass once tokens free up belong here: an expired or invalid license
(FlexNet -10, -8, ...) does not heal by requeueing and is left out on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A longer line (binary output, a progress bar without newlines) is cut to this for matching.
MAX_LINE = 4096
# How much of a matched line goes into the log line and the recorded event.
MAX_QUOTE = 120


@dataclass(frozen=True)
class LicenseError:
    """One recognisable license error: who prints it, its code, what it means, how to spot it."""

    vendor: str
    regex: re.Pattern[str]
    code: str = ""
    meaning: str = ""

    def describe(self, matched: str) -> str:
        """`FlexNet -4 'Licensed number of users already reached'` (the meaning, else the text)."""
        text = self.meaning or printable(matched)
        code = f" {self.code}" if self.code else ""
        return f"{self.vendor}{code} '{text}'"


def printable(text: str) -> str:
    """A quote safe for one log line: control characters replaced, at most MAX_QUOTE long."""
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned if len(cleaned) <= MAX_QUOTE else cleaned[: MAX_QUOTE - 3] + "..."


def _entry(vendor: str, pattern: str, code: str = "", meaning: str = "") -> LicenseError:
    return LicenseError(vendor, re.compile(pattern, re.IGNORECASE), code, meaning)


def _flexnet(code: int, meaning: str, *texts: str) -> LicenseError:
    # FlexNet prints `FlexNet Licensing error:-4,132` (older: `FLEXlm error: -4,132`): the
    # major code, a comma and the minor code, with the meaning on the same or the next line.
    alternatives = [rf"error:?[ \t]*{code},\d+", *texts]
    return _entry("FlexNet", "|".join(f"(?:{a})" for a in alternatives), str(code), meaning)


# Bounded gaps keep every pattern linear on long lines (no unbounded `.*?` to backtrack over).
_GAP = r"[^\n]{0,200}?"
_CONNECT = r"(?:cannot|can't|could not|unable to|failed to) (?:connect|contact)"
_NO_LICENSE = r"no (?:more |free )?licen[cs]es? (?:is |are )?(?:available|left)"
_IN_USE = r"all (?:the )?licen[cs]es (?:are )?(?:in use|taken|checked out)"
_DOWN = (
    r"licen[cs]e server[^\n]{0,80}?(?:down|not responding|unreachable|not reachable|not running)"
)

CATALOGUE: tuple[LicenseError, ...] = (
    _flexnet(
        -4, "Licensed number of users already reached", "licensed number of users already reached"
    ),
    _flexnet(-15, "Cannot connect to license server system", r"cannot connect to license server"),
    _flexnet(
        -18,
        "License server system does not support this feature",
        r"license server(?: system)? does not support this feature",
    ),
    _flexnet(
        -96,
        "License server machine is down or not responding",
        r"license server machine is down or not responding",
    ),
    _flexnet(-97, "The desired vendor daemon is down", r"desired vendor daemon is down"),
    _entry("RLM", r"licen[cs]e server does not support this product"),
    _entry("LM-X", rf"lm-?x\b{_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available)"),
    _entry(
        "OLicense",
        rf"olicen[cs]e{_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available|denied)",
    ),
    _entry(
        "DSLS",
        rf"(?:dsls|dslicsrv){_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available"
        r"|request[^\n]{0,40}?(?:denied|refused))",
    ),
    _entry(
        "LS-DYNA",
        rf"(?:lstc|ls-dyna){_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available)",
    ),
    _entry("RLM", r"all licenses in use"),
    _entry("license", r"licen[cs]es? (?:is |are )?not available"),
    _entry("license", _NO_LICENSE),
)


@dataclass(frozen=True)
class Found:
    """Where a license error was found and how the log line and the event name it."""

    rule: str  # e.g. FlexNet -4 'Licensed number of users already reached'
    line: str  # the matched line, quoted safely


class Searcher:
    """Looks for any of several license errors; one regex pass per line, whatever their number."""

    def __init__(self, entries: tuple[LicenseError, ...]) -> None:
        self.entries = entries
        self.any = re.compile(
            "|".join(f"(?:{entry.regex.pattern})" for entry in entries), re.IGNORECASE
        )

    def search(self, text: str) -> Found | None:
        """The last line of `text` naming a license error (the latest error is the one that
        killed the job), or None."""
        for line in reversed(text.splitlines()):
            line = line[:MAX_LINE]
            if self.any.search(line):
                for entry in self.entries:
                    match = entry.regex.search(line)
                    if match:
                        return Found(entry.describe(match.group(0)), printable(line))
        return None
