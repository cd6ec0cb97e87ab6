"""Agent fixtures: the cluster's OAuth client, agent.yaml files, `lm-agent` runs, simulated
license servers. The API is tests/conftest.py's live API (tests.live_api)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.api import ApiClient
from devstack.catalog import add_configuration
from devstack.processes import console_script
from devstack.simulator import Simulator
from lm_common.facts import AGENT_PERMISSIONS
from tests.live_api import LiveApi, client_config

LM_AGENT = console_script("lm-agent")
WriteConfig = Callable[..., Path]


@pytest.fixture(scope="session")
def cluster_client(api_server: LiveApi) -> dict[str, str]:
    """The OAuth client of cluster `cluster-a`'s agent, with the agent's permissions."""
    return api_server.server.create_client("cluster-a", AGENT_PERMISSIONS)


def seed_pool(
    api: LiveApi, cluster: Mapping[str, str], features: Mapping[str, tuple[int, int]]
) -> None:
    """A flexlm configuration of the cluster with features {"product.feature": (total, used)},
    reported by the cluster's client as just read from the license server (bookable)."""
    add_configuration(api.admin, cluster["client_id"], list(features), name="pool")
    reports = []
    for product_feature, (total, used) in features.items():
        product, feature = product_feature.split(".", 1)
        reports.append(
            {"product_name": product, "feature_name": feature, "total": total, "used": used}
        )
    reporter = ApiClient(client_config(api.url, cluster, api.state_dir / "reporter-cache"))
    reporter.put("/lm/features/by_client_id", reports)


def write_agent_yaml(path: Path, settings: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(settings)))
    return path


def run_agent(
    *arguments: str, env: Mapping[str, str], cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`lm-agent ARGUMENTS` with exactly `env` (slurmctld gives hooks no PATH, HOME or USER)."""
    return subprocess.run(
        [LM_AGENT, *arguments],
        env=dict(env),
        cwd=cwd or os.getcwd(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def simulator(tmp_path: Path) -> Simulator:
    """An empty simulator with its tools installed in tmp_path/simulator/bin."""
    return Simulator(tmp_path / "simulator").install()


@pytest.fixture
def agent_yaml(tmp_path: Path, api_server: LiveApi, cluster_client: dict[str, str]) -> WriteConfig:
    """Writes agent.yaml for cluster-a's agent (log and token cache in tmp_path)."""

    def write(**overrides: Any) -> Path:
        settings = {
            "api_url": api_server.url,
            "client_id": cluster_client["client_id"],
            "client_secret": cluster_client["client_secret"],
            "log_file": str(tmp_path / "log" / "agent.log"),
            "token_cache_dir": str(tmp_path / "cache"),
            **overrides,
        }
        return write_agent_yaml(tmp_path / "agent.yaml", settings)

    return write


def job_env(config: Path, job_id: str, licenses: str | None, **variables: str) -> dict[str, str]:
    """What slurmctld exports to PrologSlurmctld for one job."""
    env = {
        "LM_AGENT_CONFIG": str(config),
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_UID": "1001",
        "SLURM_JOB_NODELIST": "node[03-04]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_CLUSTER_NAME": "cluster-a",
        "SLURM_SCRIPT_CONTEXT": "prolog_slurmctld",
        **variables,
    }
    if licenses is not None:
        env["SLURM_JOB_LICENSES"] = licenses
    return env


def hook(command: str, env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    """Run the hook from slurmctld's log dir; returns its exit code and the agent log."""
    log_dir = tmp_path / "slurmctld-log"
    log_dir.mkdir(exist_ok=True)
    result = run_agent(command, env=env, cwd=log_dir)
    log_file = tmp_path / "log" / "agent.log"
    return result.returncode, log_file.read_text() if log_file.exists() else ""


def jobs_in_api(api: LiveApi) -> dict[str, dict[str, Any]]:
    return {job["slurm_job_id"]: job for job in api.admin.get_all("/lm/jobs")}


@pytest.fixture
def pool(live_api: LiveApi, cluster_client: dict[str, str]) -> LiveApi:
    """abaqus.abaqus: 10 on the server, 2 used; ansys.cfd: 4, none used."""
    seed_pool(live_api, cluster_client, {"abaqus.abaqus": (10, 2), "ansys.cfd": (4, 0)})
    live_api.forget_requests()
    return live_api
