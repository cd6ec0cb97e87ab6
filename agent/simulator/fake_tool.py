"""What the fake lmutil, rlmutil, lstc_qrun, lmxendutil, olixtool and DSLicSrv run.

They accept exactly the arguments `agent.tools.tool_command` builds (anything else is a usage
error, as with the real tools), look the server up by host and port in the simulator state, wait
its latency, then act out its fault or print its usage in the real tool's format. A server that
is not in the state, or is of another type, does not answer: the tool prints its "down" text.
Imports stay small: the agent's benchmark runs these tools many times per cycle.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from agent.simulator import formats
from agent.simulator.state import (
    STATE_ENV,
    Server,
    SimulatorError,
    StatePath,
    find_server,
    read_state,
)
from agent.tools import match_arguments
from lm_common.facts import TOOL_BY_SERVER_TYPE

USAGE_EXIT_CODE = 2
HANG_SECONDS = 24 * 3600

_USAGE = {
    "flexlm": "lmutil lmstat -c port@host -a",
    "rlm": "rlmutil rlmstat -c port@host -a -p",
    "lsdyna": "lstc_qrun -s port@host -R",
    "lmx": "lmxendutil -licstat -host host -port port",
    "olicense": "olixtool -sv host:port",
    "dsls": "DSLicSrv -admin  (commands on stdin: connect host port, getLicenseUsage -csv, quit)",
}


def main(server_type: str, baked_state: str | None) -> int:
    """Run as the `server_type` tool; the state path baked in at install wins over the env."""
    state_path = baked_state or os.environ.get(STATE_ENV)
    if not state_path:
        print(
            f"{TOOL_BY_SERVER_TYPE[server_type]}: no simulator state: set {STATE_ENV}",
            file=sys.stderr,
        )
        return USAGE_EXIT_CODE
    try:
        if server_type == "dsls":
            return _run_dsls(sys.argv[1:], state_path, sys.stdin, sys.stdout)
        return _run_tool(server_type, sys.argv[1:], state_path, sys.stdout)
    except SimulatorError as error:
        print(f"{TOOL_BY_SERVER_TYPE[server_type]}: {error}", file=sys.stderr)
        return error.exit_code


def _usage_error(server_type: str) -> int:
    print(f"usage: {_USAGE[server_type]}", file=sys.stderr)
    return USAGE_EXIT_CODE


def _answering_server(
    server_type: str, state_path: StatePath, host: str, port: int
) -> Server | None:
    """The server at host:port after its latency, or None if a `server_type` tool gets no answer."""
    server = find_server(read_state(state_path), host, port)
    if server is None or server.get("type") != server_type:
        return None
    time.sleep(float(server.get("latency", 0.0)))
    fault = server.get("fault", "none")
    if fault == "hang":
        time.sleep(HANG_SECONDS)
    return None if fault == "down" else server


def _run_tool(server_type: str, arguments: list[str], state_path: StatePath, out: TextIO) -> int:
    address = match_arguments(server_type, arguments)
    if address is None:
        return _usage_error(server_type)
    host, port = address["host"], int(address["port"])
    server = _answering_server(server_type, state_path, host, port)
    if server is None:
        out.write(formats.server_down(server_type, host, port))
        return formats.DOWN_EXIT_CODE
    out.write(formats.usage_output(server))
    return 0


def _run_dsls(arguments: list[str], state_path: StatePath, commands: TextIO, out: TextIO) -> int:
    """DSLicSrv's admin shell: reads `connect HOST PORT`, `getLicenseUsage -csv`, `quit`."""
    if match_arguments("dsls", arguments) is None:
        return _usage_error("dsls")
    out.write(formats.DSLS_BANNER + "\n")
    server: Server | None = None
    for line in commands:
        words = line.split()
        if not words:
            continue
        if words == ["quit"]:
            break
        if words[0] == "connect" and len(words) == 3 and words[2].isdigit():
            host, port = words[1], int(words[2])
            server = _answering_server("dsls", state_path, host, port)
            if server is None:
                out.write(formats.dsls_cannot_connect(host, port))
                return formats.DOWN_EXIT_CODE
            out.write("admin >" + formats.dsls_connected(server))
        elif words == ["getLicenseUsage", "-csv"] and server is not None:
            out.write(formats.usage_output(server))
        else:
            print(f"admin > invalid command: {line.strip()}", file=sys.stderr)
            return _usage_error("dsls")
    return 0
