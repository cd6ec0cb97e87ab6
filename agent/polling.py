"""Reading every license server of the cluster's configurations, one tool run per server.

A configuration's license servers are mirrors of one pool: the first that answers with data wins,
the next is tried only when one fails (non-zero exit with no data, time-out, or output the
parser flags as ServerUnreadable). Configurations are polled in parallel, each in a thread that
waits on its tool, so a cycle takes about as long as the slowest pool, not the sum of all.
Commands come from agent.tools and parsing from agent.parsers; this module only runs and decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from agent.parsers import FeatureUsage, ServerUnreadable, parse
from agent.process import CommandTimeout, minimal_environment, run_command
from agent.tools import tool_command

log = logging.getLogger("agent.polling")

# Enough threads for every pool of a large site at once; each only waits on a subprocess.
MAX_PARALLEL_POLLS = 64

ToolPathOf = Callable[[str], str]


@dataclass(frozen=True)
class PollResult:
    """What one configuration's servers said: usage per feature, or why none could be read."""

    configuration: Mapping[str, Any]
    features: dict[str, FeatureUsage] | None
    server: str | None = None  # "host:port" of the mirror that answered
    failures: list[str] = field(default_factory=list)  # one reason per mirror that failed

    @property
    def reachable(self) -> bool:
        return self.features is not None

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
    server_type: str, tool_path: str, host: str, port: int, timeout: float
) -> dict[str, FeatureUsage]:
    """Run the tool once against host:port and parse it; ServerUnreadable says why it failed."""
    try:
        command = tool_command(server_type, tool_path, host, port)
    except ValueError as error:
        raise ServerUnreadable(str(error)) from None
    try:
        result = run_command(
            command.argv, timeout=timeout, stdin=command.stdin, env=minimal_environment()
        )
    except CommandTimeout:
        raise ServerUnreadable(f"{command.argv[0]} timed out after {timeout:g} s") from None
    except OSError as error:
        raise ServerUnreadable(f"cannot run {command.argv[0]}: {error.strerror or error}") from None
    # Some tools exit non-zero while still printing good data (one bad feature among many):
    # the parser decides, and only output without usage counts as a failure.
    try:
        return parse(server_type, result.stdout)
    except ServerUnreadable as error:
        detail = str(error) or _first_line(result.stderr) or "no usage in the output"
        raise ServerUnreadable(f"exit {result.returncode}: {detail}") from None


def poll_configuration(
    configuration: Mapping[str, Any], tool_path_of: ToolPathOf, timeout: float
) -> PollResult:
    """Try the configuration's mirrors in order until one gives usage."""
    server_type = configuration["type"]
    failures: list[str] = []
    try:
        tool_path = tool_path_of(server_type)
    except KeyError:
        return PollResult(configuration, None, failures=[f"unknown server type {server_type!r}"])
    for server in configuration["license_servers"]:
        address = f"{server['host']}:{server['port']}"
        try:
            features = read_server(server_type, tool_path, server["host"], server["port"], timeout)
        except ServerUnreadable as error:
            failures.append(f"{address}: {error}")
            log.warning(
                "license server %s (%s, configuration %s) unreadable: %s",
                address,
                server_type,
                configuration.get("name"),
                error,
            )
            continue
        return PollResult(configuration, features, server=address, failures=failures)
    return PollResult(configuration, None, failures=failures)


def poll_all(
    configurations: Sequence[Mapping[str, Any]], tool_path_of: ToolPathOf, timeout: float
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
                    lambda configuration: poll_configuration(configuration, tool_path_of, timeout),
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


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
