"""Benchmark: PrologSlurmctld wall time, process start to exit, as slurmctld runs it (a fresh
`lm-agent prolog` with only the job's SLURM_* variables, no PATH/HOME/USER) against the real API
on localhost (gunicorn, PostgreSQL). Targets: a job with 2 tracked licenses p50 <= 120 ms and
p95 <= 200 ms; a job without licenses p50 <= 40 ms.

The agent is installed as on a controller: a virtualenv of its own with a plain (not editable)
`pip install '.[agent]'`. A development environment's interpreter pays for its editable install's
import hook and every `.pth` file of its site-packages at each start (30-40 ms here), which a
deployed agent does not.

The token is cached by a warm-up run, as it is on a controller that starts jobs all day.
`python_startup` (the bare interpreter of that virtualenv) is measured alongside: on a loaded
machine it shows how much of each number is the interpreter rather than the agent.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from agent.api import ApiClient
from bench._stack import client_config, start_api
from devstack.catalog import add_configuration
from lm_common.facts import ADMIN_PERMISSION, permission_name

PROJECT_DIR = Path(__file__).resolve().parent.parent
RUNS = 60
WARM_UP_RUNS = 3
TARGETS_MS = {"licensed_p50": 120, "licensed_p95": 200, "unlicensed_p50": 40}
# Plenty of tokens: every measured job is granted and keeps its booking.
FEATURES = {"abaqus.abaqus": 100_000, "ansys.cfd": 100_000}
CLUSTER_PERMISSIONS = [permission_name("feature", "update"), permission_name("job", "create")]


@contextmanager
def api_with_pool(root: Path, permissions: list[str] = CLUSTER_PERMISSIONS) -> Iterator[Path]:
    """PostgreSQL and the API with the two features reported; yields the agent.yaml to use
    (its client holds `permissions` and feature:update)."""
    with ExitStack() as cleanup:
        api, clients = start_api(
            root,
            cleanup,
            {
                "bench-admin": [ADMIN_PERMISSION],
                "bench-cluster": sorted({*CLUSTER_PERMISSIONS, *permissions}),
            },
        )
        admin = ApiClient(client_config(api, clients["bench-admin"], root / "admin-cache"))
        cluster = ApiClient(client_config(api, clients["bench-cluster"], root / "seed-cache"))
        seed(admin, cluster)
        settings = {
            "api_url": api.url,
            **clients["bench-cluster"],
            "log_file": str(root / "agent.log"),
            "token_cache_dir": str(root / "token-cache"),
        }
        config = root / "agent.yaml"
        config.write_text(yaml.safe_dump(settings))
        yield config


def seed(admin: ApiClient, cluster: ApiClient) -> None:
    """One flexlm configuration of the cluster with both features, reported as just read."""
    add_configuration(
        admin, cluster.config.client_id, list(FEATURES), ("lic1:27000",), name="bench"
    )
    reports = []
    for product_feature, total in FEATURES.items():
        product, feature = product_feature.split(".")
        reports.append(
            {"product_name": product, "feature_name": feature, "total": total, "used": 0}
        )
    cluster.put("/lm/features/by_client_id", reports)


def job_env(config: Path, job_id: int, licenses: str | None) -> dict[str, str]:
    """The variables slurmctld exports to PrologSlurmctld (and nothing else: no PATH)."""
    env = {
        "LM_AGENT_CONFIG": str(config),
        "SLURM_JOB_ID": str(job_id),
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_UID": "1001",
        "SLURM_JOB_NODELIST": "node[01-02]",
        "SLURM_CLUSTER_NAME": "bench",
        "SLURM_SCRIPT_CONTEXT": "prolog_slurmctld",
    }
    if licenses:
        env["SLURM_JOB_LICENSES"] = licenses
    return env


def wall_and_cpu_ms(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time (spawn to exit) and CPU time of one process; fails unless it exits 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{command} exited {result.returncode}: {result.stderr!r}")
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    return wall, cpu


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def deployed_agent(root: Path) -> Path:
    """A virtualenv with the agent installed as admins install it; returns its bin folder."""
    venv = root / "agent-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", f"{PROJECT_DIR}[agent]"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return venv / "bin"


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lm-bench-prolog-"))
    os.chmod(root, 0o755)  # the postgres user must reach its data folder
    licenses = "abaqus.abaqus@flexlm:2,ansys.cfd@flexlm:1"
    samples: dict[str, list[tuple[float, float]]] = {}
    try:
        agent_bin = deployed_agent(root)
        prolog = [str(agent_bin / "lm-agent"), "prolog"]
        with api_with_pool(root) as config:
            for job_id in range(1, WARM_UP_RUNS + 1):
                wall_and_cpu_ms(prolog, job_env(config, job_id, licenses), root)
            # Interleaved, so that a burst of load on the machine hits every case alike.
            for n in range(RUNS):
                for case, command, env in (
                    ("licensed", prolog, job_env(config, 1000 + n, licenses)),
                    ("unlicensed", prolog, job_env(config, 2000 + n, None)),
                    ("python_startup", [str(agent_bin / "python"), "-c", "pass"], {}),
                ):
                    samples.setdefault(case, []).append(wall_and_cpu_ms(command, env, root))
            granted = sum(" granted: " in line for line in (root / "agent.log").open())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results: dict[str, Any] = {
        "runs_per_case": RUNS,
        "tracked_licenses_per_job": len(FEATURES),
        "jobs_granted": granted,
    }
    for case, pairs in samples.items():
        walls = [wall for wall, _ in pairs]
        results[f"{case}_p50_ms"] = round(statistics.median(walls), 1)
        results[f"{case}_p95_ms"] = round(percentile(walls, 0.95), 1)
        results[f"{case}_cpu_p50_ms"] = round(statistics.median(cpu for _, cpu in pairs), 1)
    results["targets_ms"] = TARGETS_MS
    results["meets_targets"] = all(results[f"{name}_ms"] <= TARGETS_MS[name] for name in TARGETS_MS)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
