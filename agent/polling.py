"""Reading every license server of the cluster's configurations, one tool run per server.

A configuration's license servers are mirrors of one pool: the first that answers with data wins,
the next is tried only when one fails (non-zero exit with no data, time-out, or output the
parser flags as ServerUnreadable). Configurations are polled in parallel, each in a thread that
waits on its tool, so a cycle takes about as long as the slowest pool, not the sum of all.
Commands come from agent.tools and parsing from agent.parsers; this module only runs and decides.

Two kinds of failure are told apart, though both fail closed: a server that is unreachable (the
tool failed, timed out or printed an error) and an output not understood (the tool succeeded but
the parser found neither usage nor an error: a format to fix). The second is logged at ERROR with
the command line and the output's first lines, and the raw output is kept (agent.kept_outputs).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from agent.kept_outputs import keep_output
from agent.parsers import (
    FeatureUsage,
    OutputNotUnderstood,
    ServerUnreadable,
    ServerUsage,
    decode_output,
    parse,
)
from agent.process import CommandResult, CommandTimeout, minimal_environment, run_command
from agent.tools import tool_command
from lm_common.facts import REPORT_OK, REPORT_UNPARSABLE, REPORT_UNREACHABLE

log = logging.getLogger("agent.polling")

# Enough threads for every pool of a large site at once; each only waits on a subprocess.
MAX_PARALLEL_POLLS = 64
# Lines of a not-understood output quoted in the ERROR line.
QUOTED_LINES = 5


class UnparsableOutput(ServerUnreadable):
    """The tool ran fine but printed something the parser does not understand."""


ToolPathOf = Callable[[str], str]


@dataclass(frozen=True)
class PollResult:
    """What one configuration's servers said: usage per feature, or why none could be read."""

    configuration: Mapping[str, Any]
    features: dict[str, FeatureUsage] | None
    server: str | None = None  # "host:port" of the mirror that answered
    failures: list[str] = field(default_factory=list)  # one reason per mirror that failed
    unreadable: dict[str, str] = field(default_factory=dict)  # feature -> error it printed
    unparsable: bool = False  # a mirror answered with output the parser did not understand

    @property
    def reachable(self) -> bool:
        return self.features is not None

    @property
    def status(self) -> str:
        """The report status of the pool: unparsable when any mirror's output was not
        understood (a format to fix beats a server to restart)."""
        if self.reachable:
            return REPORT_OK
        return REPORT_UNPARSABLE if self.unparsable else REPORT_UNREACHABLE

    def feature_error(self, feature_name: str) -> str | None:
        """The error the answering server printed for this feature instead of usage."""
        wanted = feature_name.casefold()
        return next((e for n, e in self.unreadable.items() if n.casefold() == wanted), None)

    @property
    def reason(self) -> str:
        """Why the pool is unreachable: every mirror's failure, in the order they were tried."""
        return "; ".join(self.failures) or "no license server configured"

    def usage(self, feature_name: str) -> FeatureUsage | None:
        """The usage of a configured feature; names match case-insensitively (None if absent)."""
        if self.features is None:
            return None
        wanted = feature_name.casefold()
        for name, usage in self.features.items():
            if name.casefold() == wanted:
                return usage
        return None


def read_server(
    server_type: str,
    tool_path: str,
    host: str,
    port: int,
    timeout: float,
    state_dir: str | None = None,
) -> ServerUsage:
    """Run the tool once against host:port and parse it; ServerUnreadable says why it failed
    (UnparsableOutput when it ran fine but printed something the parser does not know)."""
    try:
        command = tool_command(server_type, tool_path, host, port)
    except ValueError as error:
        raise ServerUnreadable(str(error)) from None
    try:
        result = run_command(
            command.argv,
            timeout=timeout,
            stdin=command.stdin,
            env=minimal_environment(),
            decode=decode_output,
        )
    except CommandTimeout:
        raise ServerUnreadable(f"{command.argv[0]} timed out after {timeout:g} s") from None
    except OSError as error:
        raise ServerUnreadable(f"cannot run {command.argv[0]}: {error.strerror or error}") from None
    # Some tools exit non-zero while still printing good data (one bad feature among many):
    # the parser decides, and only output without usage counts as a failure.
    try:
        usage = parse(server_type, result.stdout)
    except OutputNotUnderstood as error:
        if result.returncode != 0:  # the tool failed: unreachable, whatever it printed
            detail = _first_line(result.stderr) or str(error)
            raise ServerUnreadable(f"exit {result.returncode}: {detail}") from None
        raise _not_understood(
            command.argv, f"{host}:{port}", server_type, result, state_dir
        ) from None
    except ServerUnreadable as error:
        detail = str(error) or _first_line(result.stderr) or "no usage in the output"
        raise ServerUnreadable(f"exit {result.returncode}: {detail}") from None
    for warning in usage.warnings:
        log.warning(
            "license server %s:%s (%s): inconsistent figures: %s", host, port, server_type, warning
        )
    return usage


def _not_understood(
    argv: Sequence[str],
    address: str,
    server_type: str,
    result: CommandResult,
    state_dir: str | None,
) -> UnparsableOutput:
    """Log the output the parser did not understand at ERROR, keep it, and say so."""
    command = shlex.join(argv)
    kept = "not kept (no state_dir)"
    if state_dir:
        try:
            path = keep_output(state_dir, f"{server_type}-{address}", command, result.raw_stdout)
            kept = f"kept in {path}"
        except OSError as error:
            kept = f"not kept: {error.strerror or error}"
    lines = list(
        islice(
            (_printable(line) for line in result.stdout.splitlines() if line.strip()), QUOTED_LINES
        )
    )
    log.error(
        "license server %s (%s): output not understood; command: %s; first lines: %s; "
        "raw output %s",
        address,
        server_type,
        command,
        " | ".join(lines) or "(empty)",
        kept,
    )
    return UnparsableOutput(f"output not understood (raw output {kept})")


def poll_configuration(
    configuration: Mapping[str, Any],
    tool_path_of: ToolPathOf,
    timeout: float,
    state_dir: str | None = None,
) -> PollResult:
    """Try the configuration's mirrors in order until one gives usage."""
    server_type = configuration["type"]
    failures: list[str] = []
    unparsable = False
    try:
        tool_path = tool_path_of(server_type)
    except KeyError:
        return PollResult(configuration, None, failures=[f"unknown server type {server_type!r}"])
    for server in configuration["license_servers"]:
        address = f"{server['host']}:{server['port']}"
        try:
            usage = read_server(
                server_type, tool_path, server["host"], server["port"], timeout, state_dir
            )
        except ServerUnreadable as error:
            unparsable = unparsable or isinstance(error, UnparsableOutput)
            failures.append(f"{address}: {error}")
            log.warning(
                "license server %s (%s, configuration %s) unreadable: %s",
                address,
                server_type,
                configuration.get("name"),
                error,
            )
            continue
        return PollResult(
            configuration, usage.features, address, failures, usage.unreadable, unparsable
        )
    return PollResult(configuration, None, failures=failures, unparsable=unparsable)


def poll_all(
    configurations: Sequence[Mapping[str, Any]],
    tool_path_of: ToolPathOf,
    timeout: float,
    state_dir: str | None = None,
) -> list[PollResult]:
    """Poll every configuration at once; results come back in the configurations' order.

    Configurations naming the same servers (one pool split for different grace times, say)
    share one poll, so each license server still sees one tool run per cycle.
    """
    by_pool: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for configuration in configurations:
        by_pool.setdefault(_pool_key(configuration), configuration)
    if not by_pool:
        return []
    workers = min(len(by_pool), MAX_PARALLEL_POLLS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        polled = dict(
            zip(
                by_pool,
                pool.map(
                    lambda configuration: poll_configuration(
                        configuration, tool_path_of, timeout, state_dir
                    ),
                    by_pool.values(),
                ),
                strict=True,
            )
        )
    return [
        replace(polled[_pool_key(configuration)], configuration=configuration)
        for configuration in configurations
    ]


def _pool_key(configuration: Mapping[str, Any]) -> tuple[Any, ...]:
    servers = tuple((s["host"].casefold(), s["port"]) for s in configuration["license_servers"])
    return (configuration["type"], servers)


def _printable(line: str) -> str:
    """The line with control characters escaped, so that one log line stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line.strip())


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
