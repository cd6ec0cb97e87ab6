"""`lm-cli jobs why SLURM_JOB_ID`: why a job of the caller's cluster waits for licenses."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from cli import output
from cli.api import ApiClient
from cli.resources import timestamp

FIGURES = ("total", "used", "reserved", "booked", "booked_by_other_clusters", "free")


def show_why(client: ApiClient, args: argparse.Namespace) -> str:
    why = client.get(f"/jobs/slurm_job_id/{quote(args.slurm_job_id, safe='')}/why")
    if args.json:
        return output.as_json(why)
    return describe(why)


def describe(why: dict[str, Any]) -> str:
    """The explanation, each license's pool now, and the last refusal."""
    lines = [f"job {why['slurm_job_id']} of {why['cluster_client_id']}: {why['explanation']}"]
    for license in why["licenses"]:
        figures = ", ".join(
            f"{name.replace('_', ' ')} {'-' if license[name] is None else license[name]}"
            for name in FIGURES
        )
        lines.append(f"  {license['license']}: {license['wanted']} wanted; now {figures}")
    refusal = why.get("last_refusal")
    if refusal:
        lines.append(f"last refused {timestamp(refusal['refused_at'])}:")
        for name, reason in refusal["reasons"].items():
            said = (
                f"{reason['available']} available"
                if "available" in reason
                else reason.get("reason", reason.get("code"))
            )
            lines.append(f"  {name}: {reason['requested']} requested, {said}")
    return "\n".join(lines)


def add_why_action(actions: Any, connection: argparse.ArgumentParser) -> None:
    """`lm-cli jobs why SLURM_JOB_ID [--json]`."""
    parser = actions.add_parser(
        "why", parents=[connection], help="say why a job of your cluster waits for licenses"
    )
    parser.add_argument("slurm_job_id", metavar="SLURM_JOB_ID", help="the job's Slurm job id")
    parser.set_defaults(handler=show_why, resource=None, parser=parser)
