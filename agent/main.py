"""`lm-agent`: reconcile [--loop], report, parse, prolog, epilog.

Imports are made inside each command: the prolog of a job without licenses must exit before
PyYAML, logging or the HTTP client are loaded (slurmctld waits for it on every job start).

Exit codes: 0 success, 1 the command failed (prolog: refused), 2 invalid configuration or
arguments, 3 `parse` found no usage in the output (the server could not be read, or the format is
not understood: the message says which).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from agent.config import AgentConfig

CONFIG_ERROR = 2
SERVER_UNREADABLE = 3


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the command's exit code."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments in (["prolog"], ["epilog"]):  # slurmctld's hooks: the lean path
        from agent import hooks

        hook = hooks.prolog if arguments == ["prolog"] else hooks.epilog
        sys.exit(hook(os.environ))
    options = _parser().parse_args(arguments)
    if options.config:
        os.environ["LM_AGENT_CONFIG"] = options.config
    sys.exit(options.run(options))


def _parser() -> argparse.ArgumentParser:
    import argparse

    from lm_common.facts import SERVER_TYPES

    parser = argparse.ArgumentParser(
        prog="lm-agent",
        description="License Manager for Slurm agent: runs on the Slurm controller.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="agent.yaml to use (default: $LM_AGENT_CONFIG or /etc/license-manager/agent.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reconcile = commands.add_parser(
        "reconcile", help="poll license servers, report usage, clean jobs, size the reservation"
    )
    reconcile.add_argument(
        "--loop", action="store_true", help="repeat every stat_interval seconds until stopped"
    )
    reconcile.set_defaults(run=_reconcile)

    report = commands.add_parser(
        "report", help="print what this cluster's license servers report, changing nothing"
    )
    report.set_defaults(run=_report)

    totals = commands.add_parser(
        "slurm-licenses",
        help="print as JSON the license totals the API holds for this cluster (for Licenses=)",
    )
    totals.set_defaults(run=_slurm_licenses)

    parse = commands.add_parser("parse", help="parse a saved license-server tool output")
    parse.add_argument("--type", required=True, choices=SERVER_TYPES, dest="server_type")
    parse.add_argument(
        "file", nargs="?", type=argparse.FileType("rb"), default=None, help="default: stdin"
    )
    parse.set_defaults(run=_parse)

    for name, text in (
        ("prolog", "PrologSlurmctld: book the job's licenses (exit 1 = refused)"),
        (
            "epilog",
            "EpilogSlurmctld: release the job's licenses, requeue it if it died for lack of one"
            " (always exit 0)",
        ),
    ):
        commands.add_parser(name, help=text).set_defaults(run=_hook)
    return parser


def _hook(options: argparse.Namespace) -> int:
    from agent import hooks

    return getattr(hooks, options.command)(os.environ)


def _load(command: str) -> AgentConfig:
    """The validated configuration with logging set up; exit 2 when it is invalid."""
    from agent.logs import start_command

    setup = start_command(command)
    if setup is None:
        sys.exit(CONFIG_ERROR)
    return setup[0]


def _reconcile(options: argparse.Namespace) -> int:
    config = _load("reconcile")
    from agent import reconcile

    _stop_on_signals()
    if not options.loop:
        try:
            return reconcile.run(config)
        except KeyboardInterrupt:
            reconcile.log.warning("reconcile stopped by a signal before the end of its cycle")
            return 1
    return _loop(config, reconcile.run)


def _stop_on_signals() -> None:
    """SIGTERM and Ctrl-C stop the agent, killing the tools it still runs first.

    Only the main thread receives the signal; the tools run from polling threads would otherwise
    keep the agent waiting up to tool_timeout, and outlive it if it were killed meanwhile.
    """
    import signal

    from agent.process import kill_running_tools

    def stop(signum: int, frame: object) -> None:
        kill_running_tools()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _loop(config: AgentConfig, cycle: Callable[[AgentConfig], object]) -> int:
    """Run `cycle(config)` every stat_interval seconds; a failed cycle is logged, not fatal."""
    import logging
    import time

    log = logging.getLogger("agent.reconcile")
    log.info("reconciling every %s s", config.stat_interval)
    try:
        while True:
            started = time.monotonic()
            try:
                cycle(config)
            except Exception:
                log.exception("reconcile cycle failed; next one in %s s", config.stat_interval)
            time.sleep(max(0.0, config.stat_interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        log.info("stopped")
        return 0


def _report(options: argparse.Namespace) -> int:
    config = _load("report")
    from agent import reconcile

    return reconcile.report(config)


def _slurm_licenses(options: argparse.Namespace) -> int:
    config = _load("slurm-licenses")
    from agent import reconcile

    return reconcile.print_api_totals(config)


def _parse(options: argparse.Namespace) -> int:
    """Print the usage a saved output shows as JSON on stdout, {"features": {...}}; features
    the output prints an error for, and figures read conservatively, are one stderr line each."""
    import json
    from dataclasses import asdict

    from agent.kept_outputs import KEPT_HEADER
    from agent.parsers import OutputNotUnderstood, ServerUnreadable, parse

    source = options.file or sys.stdin.buffer
    with source:
        output = source.read()
    if output.startswith(KEPT_HEADER):  # an output the agent kept: its first line is ours
        output = output.partition(b"\n")[2]
    try:
        usage = parse(options.server_type, output)
    except OutputNotUnderstood as error:
        print(f"lm-agent parse: output not understood: {error}", file=sys.stderr)
        return SERVER_UNREADABLE
    except ServerUnreadable as error:
        print(f"lm-agent parse: server unreadable: {error}", file=sys.stderr)
        return SERVER_UNREADABLE
    for name, problem in usage.unreadable.items():
        print(f"lm-agent parse: {name} unreadable: {problem}", file=sys.stderr)
    for warning in usage.warnings:
        print(f"lm-agent parse: inconsistent figures: {warning}", file=sys.stderr)
    features = {name: asdict(feature) for name, feature in usage.features.items()}
    print(json.dumps({"features": features}, default=str))  # a license's expiry date: ISO text
    return 0
