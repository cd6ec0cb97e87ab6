"""Benchmark: one reconcile cycle with 100 features on 20 simulated license servers whose tools
each take 300 ms must finish within 2 s.

The whole stack is real and throw-away: PostgreSQL, the API under gunicorn, a single-node Slurm
22.05 with the 100 licenses, and lm-simulator's fake tools. Cycles are measured in a steady
state, then with stale jobs posted before each one so that cleanup has work to do.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from agent import reconcile
from agent.api import ApiClient
from agent.config import AgentConfig, ToolPaths
from agent.polling import poll_all
from agent.simulator.main import install_tools
from agent.simulator.state import write_state
from bench._stack import client_config, start_api
from devstack.catalog import add_configuration
from devstack.slurm import SlurmCluster
from lm_common.facts import ADMIN_PERMISSION, AGENT_PERMISSIONS, slurm_license_name

SERVERS = 20
FEATURES_PER_SERVER = 5
TOTAL_PER_FEATURE = 20
TOOL_LATENCY = 0.3
STALE_JOBS_PER_CYCLE = 10
CYCLES = 5
TARGET_SECONDS = 2.0
PRODUCT = "bench"


def feature_name(server: int, feature: int) -> str:
    return f"s{server:02d}f{feature}"


def simulator_state() -> dict[str, Any]:
    """20 flexlm servers, 5 features each, some tokens checked out on every feature."""
    servers = []
    for server in range(SERVERS):
        features = [feature_name(server, n) for n in range(FEATURES_PER_SERVER)]
        servers.append(
            {
                "type": "flexlm",
                "host": f"lic{server:02d}",
                "port": 27000,
                "fault": "none",
                "latency": TOOL_LATENCY,
                "features": [{"name": name, "total": TOTAL_PER_FEATURE} for name in features],
                "checkouts": [
                    {"feature": name, "user": "desk", "host": "pc1", "count": 1 + n % 4}
                    for n, name in enumerate(features)
                ],
            }
        )
    return {"servers": servers}


@contextmanager
def stack(root: Path) -> Iterator[AgentConfig]:
    """PostgreSQL, the API, Slurm and the simulator, seeded; yields the agent's settings."""
    with ExitStack() as cleanup:
        api, clients = start_api(
            root,
            cleanup,
            {"bench-admin": [ADMIN_PERMISSION], "bench-cluster": AGENT_PERMISSIONS},
        )
        licenses = {
            slurm_license_name(PRODUCT, feature_name(s, n), "flexlm"): TOTAL_PER_FEATURE
            for s in range(SERVERS)
            for n in range(FEATURES_PER_SERVER)
        }
        slurm = SlurmCluster(root=root / "slurm", licenses=licenses)
        slurm.start()
        cleanup.callback(slurm.stop)
        state = root / "simulator.json"
        write_state(state, simulator_state())
        install_tools(root / "tools", state)

        def agent_config(client: str, **settings: Any) -> AgentConfig:
            cache = root / f"{client}-cache"
            return client_config(api, clients[client], cache, log_file=None, **settings)

        seed(ApiClient(agent_config("bench-admin")), clients["bench-cluster"]["client_id"])
        yield agent_config(
            "bench-cluster",
            tools=ToolPaths.in_directory(root / "tools", "/usr/bin/scontrol", "/usr/bin/squeue"),
            slurm_conf=str(slurm.conf_file),
            lock_file=str(root / "reconcile.lock"),
            state_file=str(root / "reconcile-state.json"),
            tool_timeout=5.0,
        )


def seed(admin: ApiClient, cluster_client_id: str) -> None:
    """One configuration per license server, with its five features."""
    for server in range(SERVERS):
        features = [f"{PRODUCT}.{feature_name(server, n)}" for n in range(FEATURES_PER_SERVER)]
        add_configuration(
            admin,
            cluster_client_id,
            features,
            (f"lic{server:02d}:27000",),
            name=f"pool{server:02d}",
        )


def timed_cycle(config: AgentConfig, agent: ApiClient, stale_jobs: int, cycle: int) -> float:
    """Seconds of one `reconcile.run`, after posting `stale_jobs` jobs for it to clean up."""
    post_stale_jobs(agent, stale_jobs, cycle)
    started = time.perf_counter()
    exit_code = reconcile.run(config)
    elapsed = time.perf_counter() - started
    if exit_code != 0 or agent.get_all(reconcile.JOBS_PATH):
        raise RuntimeError(f"cycle {cycle} did not clean up (exit {exit_code})")
    return elapsed


def post_stale_jobs(agent: ApiClient, count: int, cycle: int) -> None:
    """Jobs the API knows but Slurm does not (their epilog was lost): cleanup deletes them."""
    for n in range(count):
        agent.post(
            "/lm/jobs",
            {
                "slurm_job_id": f"{900000 + cycle * 100 + n}",
                "username": "alice",
                "lead_host": "node01",
                "bookings": [{"product_feature": f"{PRODUCT}.{feature_name(n, 0)}", "quantity": 1}],
            },
        )


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lm-bench-reconcile-"))
    os.chmod(root, 0o755)  # the postgres user must reach its data folder
    try:
        with stack(root) as config:
            agent = ApiClient(config)
            if reconcile.run(config) != 0:  # warm-up: token, first report, reservation created
                raise RuntimeError("the warm-up reconcile failed; see the log lines above")
            configurations = agent.get(reconcile.CONFIGURATIONS_PATH)
            started = time.perf_counter()
            poll_all(configurations, config.tool_path, config.tool_timeout)
            poll_seconds = time.perf_counter() - started
            steady = [timed_cycle(config, agent, stale_jobs=0, cycle=n) for n in range(CYCLES)]
            busy = [
                timed_cycle(config, agent, stale_jobs=STALE_JOBS_PER_CYCLE, cycle=n)
                for n in range(CYCLES)
            ]
            reserved = reconcile.slurm_of(config).reservation(config.reservation_name)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "servers": SERVERS,
        "features": SERVERS * FEATURES_PER_SERVER,
        "tool_latency_s": TOOL_LATENCY,
        "cycles": CYCLES,
        "cycle_s": summary(steady),
        "cycle_with_stale_jobs_s": {**summary(busy), "stale_jobs": STALE_JOBS_PER_CYCLE},
        "polling_only_s": round(poll_seconds, 3),
        "licenses_in_reservation": len(reserved.licenses) if reserved else 0,
        "target_s": TARGET_SECONDS,
        "meets_target": max(steady + busy) <= TARGET_SECONDS,
    }


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds), 3),
        "min": round(min(seconds), 3),
        "max": round(max(seconds), 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
