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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# A longer line (binary output, a progress bar without newlines) is cut to this for matching.
MAX_LINE = 4096
# How much of a matched line goes into the log line and the recorded event.
MAX_QUOTE = 120


@dataclass(frozen=True)
class LicenseError:
    """One recognisable license error: who prints it, its code, what it means, how to spot it."""

    vendor: str
    pattern: str  # a regular expression, matched case-insensitively within one line
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


def _flexnet(code: int, meaning: str, *texts: str) -> LicenseError:
    # FlexNet prints `FlexNet Licensing error:-4,132` (older: `FLEXlm error: -4,132`): the
    # major code, a comma and the minor code, with the meaning on the same or the next line.
    alternatives = [rf"error:?[ \t]*{code},\d+", *texts]
    return LicenseError("FlexNet", "|".join(f"(?:{a})" for a in alternatives), str(code), meaning)


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
    LicenseError("RLM", r"licen[cs]e server does not support this product"),
    LicenseError(
        "LM-X", rf"lm-?x\b{_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available)"
    ),
    LicenseError(
        "OLicense",
        rf"olicen[cs]e{_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available|denied)",
    ),
    LicenseError(
        "DSLS",
        rf"(?:dsls|dslicsrv){_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available"
        r"|request[^\n]{0,40}?(?:denied|refused))",
    ),
    LicenseError(
        "LS-DYNA",
        rf"(?:lstc|ls-dyna){_GAP}(?:{_IN_USE}|{_NO_LICENSE}|{_CONNECT}|{_DOWN}|not available)",
    ),
    LicenseError("RLM", r"all licenses in use"),
    LicenseError("license", r"licen[cs]es? (?:is |are )?not available"),
    LicenseError("license", _NO_LICENSE),
)


@dataclass(frozen=True)
class Found:
    """Where a license error was found and how the log line and the event name it."""

    rule: str  # e.g. FlexNet -4 'Licensed number of users already reached'
    line: str  # the matched line, quoted safely


# The whole catalogue as one regular expression, one named group per entry. Every pattern stays
# within a line ([^\n], [ \t]) and its gaps are bounded, so a search is linear in the line.
CATALOGUE_REGEX = re.compile(
    "|".join(f"(?P<e{number}>{entry.pattern})" for number, entry in enumerate(CATALOGUE)),
    re.IGNORECASE,
)
# Every line the catalogue can match holds one of these words; finding them is ~30 times faster
# than trying the catalogue at every position, so only the lines holding them are searched.
KEYWORDS = re.compile(r"licen|error|daemon|lm-?x|dsls|dslicsrv|lstc|ls-dyna", re.IGNORECASE)


def search(text: str, extra: Sequence[tuple[LicenseError, re.Pattern[str]]] = ()) -> Found | None:
    """The last license error in `text` (the latest one is what killed the job), or None.

    `extra` are admins' patterns (agent.yaml), searched line by line with each line cut to
    MAX_LINE characters: their cost stays bounded even if one backtracks badly.
    """
    found: list[tuple[int, LicenseError, str]] = []
    last = _last_catalogue_match(text)
    if last is not None and last.lastgroup is not None:
        found.append((last.start(), CATALOGUE[int(last.lastgroup[1:])], last.group(0)))
    if extra:
        found.extend(_search_lines(text, extra))
    if not found:
        return None
    position, entry, matched = max(found, key=lambda item: item[0])
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    return Found(entry.describe(matched), printable(line))


def _last_catalogue_match(text: str) -> re.Match[str] | None:
    last = None
    searched_to = -1
    for hit in KEYWORDS.finditer(text):
        if hit.start() < searched_to:
            continue  # another keyword of a line already searched
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.start())
        searched_to = end if end >= 0 else len(text)
        for last in CATALOGUE_REGEX.finditer(text, start, searched_to):  # noqa: B007
            pass
    return last


def _search_lines(
    text: str, extra: Sequence[tuple[LicenseError, re.Pattern[str]]]
) -> Iterator[tuple[int, LicenseError, str]]:
    """The last line matching each admin pattern, as (position in text, entry, matched text)."""
    for entry, regex in extra:
        for start, line in _lines_from_the_end(text):
            match = regex.search(line[:MAX_LINE])
            if match:
                yield start + match.start(), entry, match.group(0)
                break


def _lines_from_the_end(text: str) -> Iterator[tuple[int, str]]:
    end = len(text)
    while True:
        start = text.rfind("\n", 0, end) + 1
        yield start, text[start:end]
        if start == 0:
            return
        end = start - 1
