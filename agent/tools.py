"""Command lines of the license-server tools, kept apart from parsing their output.

One argument template per server type is the single source of truth (the tools' names are in
lm_common.facts): `tool_command` fills it in for the agent, and `match_arguments` reads it back for
the simulator's fake tools (checking the result by rebuilding the command), so both always agree.
"""

from __future__ import annotations

from typing import NamedTuple

from lm_common.facts import TOOL_BY_SERVER_TYPE

_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "flexlm": ("lmstat", "-c", "{port}@{host}", "-a"),
    "rlm": ("rlmstat", "-c", "{port}@{host}", "-a", "-p"),
    "lsdyna": ("-s", "{port}@{host}", "-R"),
    "lmx": ("-licstat", "-host", "{host}", "-port", "{port}"),
    "olicense": ("-sv", "{host}:{port}"),
    "dsls": ("-admin",),
}
# DSLicSrv takes its commands on stdin; the server address is in the connect command.
DSLS_SCRIPT = "connect {host} {port}\ngetLicenseUsage -csv\nquit\n"

_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def valid_host(host: object) -> bool:
    """A host name or IPv4 address: letters, digits, `_ . -`, not starting with `.` or `-`.

    Plain string checks rather than a regex: the simulator's fake tools import this module on
    every run and must start fast.
    """
    return (
        isinstance(host, str)
        and host[:1] not in ("", ".", "-")
        and _HOST_CHARACTERS.issuperset(host)
    )


class ToolCommand(NamedTuple):
    """What to run: the argument vector (tool path first) and the text to feed on stdin."""

    argv: list[str]
    stdin: str | None


def tool_command(server_type: str, tool_path: str, host: str, port: int) -> ToolCommand:
    """The command that prints the usage of every feature of the server at host:port."""
    if server_type not in _ARGUMENTS:
        expected = ", ".join(TOOL_BY_SERVER_TYPE)
        raise ValueError(f"unknown license server type {server_type!r}; expected one of {expected}")
    if not tool_path:
        raise ValueError(f"no path given for the {TOOL_BY_SERVER_TYPE[server_type]} tool")
    if not valid_host(host):
        raise ValueError(f"invalid license server host {host!r}: expected a host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"invalid license server port {port!r}: expected 1 to 65535")
    arguments = [item.format(host=host, port=port) for item in _ARGUMENTS[server_type]]
    stdin = DSLS_SCRIPT.format(host=host, port=port) if server_type == "dsls" else None
    return ToolCommand([tool_path, *arguments], stdin)


def match_arguments(server_type: str, arguments: list[str]) -> dict[str, str] | None:
    """The host and port that `arguments` fill in; None when they are not the tool's arguments."""
    found: dict[str, str] = {}
    template = _ARGUMENTS[server_type]
    for expected, actual in zip(template, arguments, strict=False):
        if expected == "{host}" or expected == "{port}":
            found[expected[1:-1]] = actual
        elif "@" in expected:
            found["port"], _, found["host"] = actual.partition("@")
        elif ":" in expected:
            found["host"], _, found["port"] = actual.rpartition(":")
    if not found:
        return found if list(template) == arguments else None
    port = found.get("port", "")
    if not (port.isdigit() and valid_host(found.get("host"))):
        return None
    try:
        rebuilt = tool_command(server_type, "tool", found["host"], int(port))
    except ValueError:
        return None
    return found if rebuilt.argv[1:] == arguments else None
