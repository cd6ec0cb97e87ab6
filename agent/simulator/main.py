"""`lm-simulator`: simulated license servers for tests, the demo and admins' dry runs.

The state file comes from `--state PATH` or LM_SIMULATOR_STATE. Bad usage exits 2 with one
error line; a checkout the server would deny exits 1, like a real license server refusing it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.simulator.formats import free_licenses
from agent.simulator.state import (
    FAULTS,
    STATE_ENV,
    Server,
    SimulatorError,
    State,
    changing_state,
    empty_state,
    find_server,
    read_state,
    state_lock,
    write_state,
)
from agent.tools import valid_host
from lm_common.facts import SERVER_TYPES, TOOL_BY_SERVER_TYPE

# Names the real tools print as one token: letters, digits, and - _ . (features also :).
_FEATURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _pattern_type(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    """An argparse type accepting names the real tools print as one token."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r}")
        return value

    return check


def _host(value: str) -> str:
    if not valid_host(value):
        raise argparse.ArgumentTypeError(f"invalid host {value!r}")
    return value


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not (valid_host(host) and port.isdigit() and 1 <= int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"invalid server {value!r}: expected HOST:PORT")
    return host, int(port)


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}: expected 1 to 65535")
    return int(value)


def _count(minimum: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            expected = f"expected an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"invalid count {value!r}: {expected}")
        return number

    return check


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid latency {value!r}: expected seconds >= 0")
    return seconds


def _server(state: State, address: tuple[str, int]) -> Server:
    server = find_server(state, *address)
    if server is None:
        raise SimulatorError(f"no server {address[0]}:{address[1]}: add it with add-server")
    return server


def _feature(server: Server, name: str) -> dict:
    for feature in server["features"]:
        if feature["name"] == name:
            return feature
    raise SimulatorError(f"server {server['host']}:{server['port']} has no feature {name!r}")


def _add_server(state: State, args: argparse.Namespace) -> None:
    if find_server(state, args.host, args.port) is not None:
        raise SimulatorError(f"server {args.host}:{args.port} already exists")
    state["servers"].append(
        {
            "type": args.type,
            "host": args.host,
            "port": args.port,
            "fault": "none",
            "latency": 0.0,
            "features": [],
            "checkouts": [],
        }
    )


def _add_feature(state: State, args: argparse.Namespace) -> None:
    server = _server(state, args.server)
    if any(feature["name"] == args.name for feature in server["features"]):
        raise SimulatorError(f"feature {args.name!r} already exists on {args.server[0]}")
    server["features"].append({"name": args.name, "total": args.total})


def _set_total(state: State, args: argparse.Namespace) -> None:
    _feature(_server(state, args.server), args.name)["total"] = args.total


def _checkout(state: State, args: argparse.Namespace) -> None:
    server = _server(state, args.server)
    feature = _feature(server, args.feature)
    free = free_licenses(server, feature)
    if args.count > free:
        raise SimulatorError(
            f"checkout denied: {args.count} of {args.feature} requested, {max(0, free)} free",
            exit_code=1,
        )
    server["checkouts"].append(
        {"feature": args.feature, "user": args.user, "host": args.host, "count": args.count}
    )


def _checkin(state: State, args: argparse.Namespace) -> None:
    """Check in every matching checkout, or only one of `--count` licenses (a job's own)."""
    server = _server(state, args.server)

    def matches(checkout: dict) -> bool:
        return (
            checkout["user"] == args.user
            and args.feature in (None, checkout["feature"])
            and args.host in (None, checkout["host"])
            and args.count in (None, checkout["count"])
        )

    found = [index for index, checkout in enumerate(server["checkouts"]) if matches(checkout)]
    if not found:
        raise SimulatorError(f"no matching checkout of {args.user} on {args.server[0]}")
    dropped = set(found[:1] if args.count is not None else found)
    server["checkouts"] = [c for i, c in enumerate(server["checkouts"]) if i not in dropped]


def _fault(state: State, args: argparse.Namespace) -> None:
    _server(state, args.server)["fault"] = args.fault


def _latency(state: State, args: argparse.Namespace) -> None:
    _server(state, args.server)["latency"] = args.seconds


_CHANGES = {
    "add-server": _add_server,
    "add-feature": _add_feature,
    "set-total": _set_total,
    "checkout": _checkout,
    "checkin": _checkin,
    "fault": _fault,
    "latency": _latency,
}

_TOOL_SCRIPT = '''#!{python} -IS
"""{tool} simulated by lm-simulator (License Manager for Slurm)."""
import sys

sys.path.insert(0, {package_root!r})
from agent.simulator.fake_tool import main

sys.exit(main({server_type!r}, {state!r}))
'''


def install_tools(directory: Path, state: Path | None) -> list[Path]:
    """Write the six fake tools; they run from any cwd with an empty environment."""
    directory.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])
    written = []
    for server_type, tool in TOOL_BY_SERVER_TYPE.items():
        path = directory / tool
        path.write_text(
            _TOOL_SCRIPT.format(
                python=sys.executable,
                tool=tool,
                package_root=package_root,
                server_type=server_type,
                state=str(state.resolve()) if state else None,
            )
        )
        path.chmod(0o755)
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    state_option = argparse.ArgumentParser(add_help=False)
    state_option.add_argument(
        "--state", type=Path, default=argparse.SUPPRESS, help=f"state file (default ${STATE_ENV})"
    )
    parser = argparse.ArgumentParser(prog="lm-simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, help=f"state file (default ${STATE_ENV})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, parents=[state_option])

    def server_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--server", type=_address, required=True, metavar="HOST:PORT")

    command("init", "start from an empty state")
    sub = command("add-server", "add a simulated license server")
    sub.add_argument("--type", required=True, choices=SERVER_TYPES)
    sub.add_argument("--host", required=True, type=_host)
    sub.add_argument("--port", required=True, type=_port)
    for name, help_text in (
        ("add-feature", "add a feature and its total to a server"),
        ("set-total", "change a feature's total"),
    ):
        sub = command(name, help_text)
        server_option(sub)
        sub.add_argument("name", type=_pattern_type(_FEATURE_NAME, "feature name"))
        sub.add_argument("--total", required=True, type=_count(0))
    sub = command("checkout", "check licenses out (denied beyond the free count)")
    server_option(sub)
    sub.add_argument("feature", type=_pattern_type(_FEATURE_NAME, "feature name"))
    sub.add_argument("--user", required=True, type=_pattern_type(_USER, "user"))
    sub.add_argument("--host", required=True, type=_host)
    sub.add_argument("--count", type=_count(1), default=1)
    sub = command("checkin", "check in a user's licenses (optionally one feature or host)")
    server_option(sub)
    sub.add_argument("feature", nargs="?", type=_pattern_type(_FEATURE_NAME, "feature name"))
    sub.add_argument("--user", required=True, type=_pattern_type(_USER, "user"))
    sub.add_argument("--host", type=_host)
    sub.add_argument(
        "--count", type=_count(1), help="check in one checkout of exactly this many licenses"
    )
    sub = command("fault", "make the server misbehave (or behave again with none)")
    server_option(sub)
    sub.add_argument("fault", choices=FAULTS)
    sub = command("latency", "seconds the server's tool waits before answering")
    server_option(sub)
    sub.add_argument("seconds", type=_seconds)
    command("show", "print the state as JSON")
    sub = command("install-tools", "write the fake tools (lmutil, rlmutil, ...) into DIR")
    sub.add_argument("directory", type=Path, metavar="DIR")
    return parser


def _run(args: argparse.Namespace, state_path: Path | None) -> None:
    if args.command == "install-tools":
        for path in install_tools(args.directory, state_path):
            print(path)
        return
    if state_path is None:
        raise SimulatorError(f"no state file: pass --state PATH or set {STATE_ENV}")
    if args.command == "init":
        with state_lock(state_path):
            write_state(state_path, empty_state())
    elif args.command == "show":
        print(json.dumps(read_state(state_path), indent=2))
    else:
        with changing_state(state_path) as state:
            _CHANGES[args.command](state, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    state_path = args.state or (Path(os.environ[STATE_ENV]) if os.environ.get(STATE_ENV) else None)
    try:
        _run(args, state_path)
    except SimulatorError as error:
        print(f"lm-simulator: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        print(f"lm-simulator: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
