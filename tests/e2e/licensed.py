"""Jobs that really use their licenses, and the rule every scenario must keep.

A licensed job's script checks its tokens out on the simulated license server when it starts
(as a solver does) and in when it exits. A checkout the server denies is a job that would have
crashed for lack of a license: the script prints DENIED and exits 3.

The ledger samples, while a scenario runs, each of its pools: tokens used outside Slurm
(checkouts not made from the cluster's node) plus the tokens of Slurm's running jobs must never
exceed the server's total. Outside users take tokens when they please; what this system decides
(which jobs run) must leave room for them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import console_script
from devstack.slurm import HeldJob
from devstack.stack import Pool, Stack

DENIED = "LICENSE CHECKOUT DENIED"
SAMPLE_INTERVAL = 0.2
JOB_SCRIPT = """#!/bin/sh
# A solver: waits for {start}, checks its tokens out, works, checks them in when it exits.
LICENSE="--server {server} {feature} --user $(id -un) --host ${{SLURMD_NODENAME:-$(hostname -s)}}"
{wait_start}
if ! {simulator} --state {state} checkout $LICENSE --count {count}; then
    echo "{denied}"
    exit 3
fi
trap '{simulator} --state {state} checkin $LICENSE --count {count}' EXIT
trap 'exit 143' TERM INT
{work}
"""


def _wait_for_file(path: Path) -> str:
    return f"while [ ! -e {path} ]; do sleep 0.1; done"


@dataclass
class Ledger:
    """Licensed jobs of one scenario and the pools whose totals they must respect."""

    stack: Stack
    pools: list[Pool] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    samples: int = 0  # checks made: a ledger that never managed one proves nothing
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    # --- jobs -------------------------------------------------------------------------------

    def _script(self, pool: Pool, count: int, wait_start: str, work: str) -> str:
        return JOB_SCRIPT.format(
            start="its start signal" if wait_start else "nothing",
            server=pool.servers[0],
            feature=pool.feature,
            wait_start=wait_start,
            simulator=console_script("lm-simulator"),
            state=self.stack.simulator.state_file,
            count=count,
            denied=DENIED,
            work=work,
        )

    def submit(self, pool: Pool, count: int, *extra_args: str, seconds: float = 0) -> int:
        """A job that checks `count` tokens out at once, works `seconds`, checks them in."""
        script = self._script(pool, count, "", f"sleep {seconds:g}")
        job_id = self.stack.slurm.submit(script, *extra_args, licenses={pool.slurm_license: count})
        self.jobs.append(job_id)
        return job_id

    def submit_held(self, pool: Pool, count: int, *, checkout_on_release: bool = False) -> HeldJob:
        """A job that runs until released, checking its tokens out at start, or only once
        released (`checkout_on_release`: a solver still reading its input until then)."""
        gate = self.stack.slurm.job_dir / f"release-{uuid.uuid4().hex}"
        if checkout_on_release:
            script = self._script(pool, count, _wait_for_file(gate), "true")
        else:
            script = self._script(pool, count, "", _wait_for_file(gate))
        job_id = self.stack.slurm.submit(script, licenses={pool.slurm_license: count})
        self.jobs.append(job_id)
        return HeldJob(job_id, gate)

    def denied(self) -> list[int]:
        """Licensed jobs whose checkout the license server refused (they would have crashed)."""
        found = []
        for job_id in self.jobs:
            output = self.stack.slurm.job_dir / f"slurm-{job_id}.out"
            if output.exists() and DENIED in output.read_text(errors="replace"):
                found.append(job_id)
        return found

    # --- the rule ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="ledger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            if self.pools:
                try:
                    self.check()
                except (OSError, ValueError, RuntimeError):
                    continue  # a state file being replaced, Slurm busy: sample again
                self.samples += 1

    def check(self) -> None:
        """One sample: outside use + Slurm's running jobs <= total, for every pool."""
        state = json.loads(self.stack.simulator.state_file.read_text())
        servers = {f"{s['host']}:{s['port']}": s for s in state["servers"]}
        running = self.stack.slurm.run("squeue", "-h", "-t", "RUNNING", "-o", "%A|%W").stdout
        held: dict[str, int] = {}
        for line in running.splitlines():
            _, _, licenses = line.partition("|")
            for spec in licenses.split(","):
                name, _, count = spec.partition(":")
                if name and name != "(null)":
                    held[name] = held.get(name, 0) + int(count or 1)
        node = self.stack.slurm.node_name
        for pool in list(self.pools):
            server = servers.get(pool.servers[0])
            if server is None:
                continue
            total = next(f["total"] for f in server["features"] if f["name"] == pool.feature)
            outside = sum(
                c["count"]
                for c in server["checkouts"]
                if c["feature"] == pool.feature and c["host"] != node
            )
            in_slurm = held.get(pool.slurm_license, 0)
            if outside + in_slurm > total:
                self.violations.append(
                    f"{time.strftime('%H:%M:%S')} {pool.product_feature}: outside {outside} + "
                    f"Slurm jobs {in_slurm} > total {total} (running: {running.split()})"
                )
