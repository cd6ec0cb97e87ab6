"""License-server output parsers: one pure function per server type, from tool output to usage.

Interface (the agent's poller and `lm-agent parse` rely on it):

- ``parse(server_type, output) -> ServerUsage``: ``output`` is the tool's stdout as bytes (any
  encoding a tool writes: UTF-8, UTF-16 with or without BOM) or text; line ends and trailing
  blanks do not matter. ``ServerUsage.features`` holds the features the output shows, keyed by
  the feature name exactly as printed (callers match names case-insensitively); several pools of
  one name (versions, license blocks, vendor daemons) are summed into one feature.
  ``ServerUsage.unreadable`` names the features the output prints an error for instead of usage,
  and ``ServerUsage.warnings`` the figures that did not add up (read conservatively).
- ``FeatureUsage(total, used, uses)``: ``used`` is the server's own in-use figure (never less
  than its checkouts); ``uses`` lists the checkouts as ``Checkout(username, lead_host, count)``.
- ``ServerUnreadable``: the output shows no usage but an error (server down, connection
  refused); its message quotes the tool's error line. Try the next mirror.
- ``OutputNotUnderstood`` (a ServerUnreadable): no usage and no error either: a format the parser
  does not know (or an empty output).
- ``ValueError``: ``server_type`` is not one of lm_common.facts.SERVER_TYPES (a parser each;
  this package imports only the standard library, so the registry below names them itself).

Each ``agent.parsers.<type>.parse(text)`` is pure (no I/O) and reads the whole text in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.parsers import dsls, flexlm, lmx, lsdyna, olicense, rlm
from agent.parsers.usage import (
    Checkout,
    FeatureUsage,
    OutputNotUnderstood,
    ServerUnreadable,
    ServerUsage,
    decode_output,
    normalize_text,
)

__all__ = [
    "Checkout",
    "FeatureUsage",
    "OutputNotUnderstood",
    "ServerUnreadable",
    "ServerUsage",
    "decode_output",
    "parse",
]

_PARSERS: dict[str, Callable[[str], ServerUsage]] = {
    "flexlm": flexlm.parse,
    "rlm": rlm.parse,
    "lsdyna": lsdyna.parse,
    "lmx": lmx.parse,
    "olicense": olicense.parse,
    "dsls": dsls.parse,
}


def parse(server_type: str, output: str | bytes) -> ServerUsage:
    """Usage per feature from one tool output of a `server_type` license server."""
    parser = _PARSERS.get(server_type)
    if parser is None:
        expected = ", ".join(_PARSERS)
        raise ValueError(f"unknown license server type {server_type!r}; expected one of {expected}")
    text = decode_output(output) if isinstance(output, bytes) else output
    return parser(normalize_text(text))
