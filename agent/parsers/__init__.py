"""License-server output parsers: one pure function per server type, from tool output to usage.

Interface (the agent's poller and `lm-agent parse` rely on it):

- ``parse(server_type, text) -> dict[str, FeatureUsage]``: the features the output shows, keyed by
  the feature name exactly as printed (callers match names case-insensitively). Several pools of
  one name (versions, license blocks) are summed into one feature.
- ``FeatureUsage(total, used, uses)``: ``used`` is the server's own in-use figure; ``uses`` lists
  the checkouts as ``Checkout(username, lead_host, count)``.
- ``ServerUnreadable``: the output shows no usage (server down, connection refused, empty or
  garbled output); its message quotes the tool's error line. Try the next mirror.
- ``ValueError``: ``server_type`` is not one of lm_common.facts.SERVER_TYPES (a parser each;
  this package imports only the standard library, so the registry below names them itself).

Each ``agent.parsers.<type>.parse(text)`` is pure (no I/O) and reads the whole text in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.parsers import dsls, flexlm, lmx, lsdyna, olicense, rlm
from agent.parsers.usage import Checkout, FeatureUsage, ServerUnreadable

__all__ = ["Checkout", "FeatureUsage", "ServerUnreadable", "parse"]

_PARSERS: dict[str, Callable[[str], dict[str, FeatureUsage]]] = {
    "flexlm": flexlm.parse,
    "rlm": rlm.parse,
    "lsdyna": lsdyna.parse,
    "lmx": lmx.parse,
    "olicense": olicense.parse,
    "dsls": dsls.parse,
}


def parse(server_type: str, text: str) -> dict[str, FeatureUsage]:
    """Usage per feature from one tool output of a `server_type` license server."""
    parser = _PARSERS.get(server_type)
    if parser is None:
        expected = ", ".join(_PARSERS)
        raise ValueError(f"unknown license server type {server_type!r}; expected one of {expected}")
    return parser(text)
