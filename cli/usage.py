"""`lm-cli features usage`: what a feature's (or its pool's) history says about a period."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from cli import output
from cli.api import ApiClient
from cli.resources import positive_int
from lm_common.durations import parse_duration

HOUR, DAY = 3600, 86400
# The API answers at most this many points; the summary needs no more.
MAX_POINTS = 10_000


def duration(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds < 60:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least a minute (60, 1m)")
    return seconds


def step_for(since: int) -> int:
    """Raw minutes for a day or less; whole hours beyond (the API reads its hourly rollups)."""
    if since <= DAY:
        return 60
    return HOUR * max(1, math.ceil(since / HOUR / MAX_POINTS))


def show_usage(client: ApiClient, args: argparse.Namespace) -> str:
    end = datetime.now(UTC)
    start = end - timedelta(seconds=args.since)
    feature = client.get(f"/features/{args.id}")
    path = f"/features/{args.id}/{'pool/' if args.pool else ''}usage"
    params = {"start": start.isoformat(), "end": end.isoformat(), "step": step_for(args.since)}
    usage = client.get(path, params)
    if args.json:
        return output.as_json(usage)
    return describe(feature, usage, pool=args.pool)


def describe(feature: dict[str, Any], usage: dict[str, Any], *, pool: bool) -> str:
    summary = usage["summary"]
    name = f"{feature['product']['name']}.{feature['name']}"
    what = f"pool of {name} ({len(usage['feature_ids'])} features)" if pool else name
    since = str(usage["start"])[:16].replace("T", " ")
    if summary["peak_used"] is None:
        return f"{what}: no usage reported since {since} UTC"
    demand = (
        "not reported"
        if summary["peak_demand"] is None
        else f"peak {summary['peak_demand']} licenses wanted by pending jobs, "
        f"{summary['unmet_demand_license_hours']} license-hours"
    )
    return "\n".join(
        [
            f"{what} (feature {feature['id']}) since {since} UTC:",
            f"  peak use:        {summary['peak_used']} of {summary['total']}",
            f"  hours at 100 %:  {summary['hours_at_100_percent']}",
            f"  refusals:        {summary['refusals']} ({summary['refused_licenses']} licenses)",
            f"  unmet demand:    {demand}",
        ]
    )


def add_usage_action(actions: Any, connection: argparse.ArgumentParser) -> None:
    """`lm-cli features usage --id N [--since 7d] [--pool] [--json]`."""
    parser = actions.add_parser(
        "usage", parents=[connection], help="summarize a feature's usage history"
    )
    parser.add_argument("--id", type=positive_int, required=True, help="feature id")
    parser.add_argument(
        "--since",
        type=duration,
        default=7 * DAY,
        help="how far back: 90m, 36h, 7d, 2w (default 7d)",
    )
    parser.add_argument(
        "--pool", action="store_true", help="the whole pool (every cluster sharing the servers)"
    )
    parser.set_defaults(handler=show_usage, resource=None, parser=parser)
