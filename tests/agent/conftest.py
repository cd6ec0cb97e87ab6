"""Agent fixtures: the real API under gunicorn, OAuth clients, agent.yaml files, `lm-agent` runs.

The API is the production stack (gunicorn, built-in issuer, PostgreSQL); its access log shows
which endpoints the agent really called, e.g. whether a prolog fetched a token.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from agent.api import ApiClient
from agent.config import AgentConfig
from devstack.api import ApiServer
from devstack.catalog import add_configuration
from devstack.postgres import PostgresCluster
from devstack.processes import console_script, free_port
from devstack.simulator import Simulator
from lm_common.facts import ADMIN_PERMISSION, AGENT_PERMISSIONS

LM_AGENT = console_script("lm-agent")
WriteConfig = Callable[..., Path]
CATALOG_TABLES = (
    "bookings, jobs, features, products, license_servers, configurations, license_failures, "
    "reconcile_leases"
)


@dataclass
class LiveApi:
    """The running API, an admin client for setting up data, and the access log."""

    server: ApiServer
    access_log: Path
    database_url: str
    state_dir: Path
    admin: ApiClient

    @property
    def url(self) -> str:
        return self.server.url

    def requests_seen(self) -> list[str]:
        """`METHOD /path STATUS` of every request served so far, oldest first."""
        if not self.access_log.exists():
            return []
        return [line.strip() for line in self.access_log.read_text().splitlines()]

    def forget_requests(self) -> None:
        self.access_log.write_text("")


@pytest.fixture(scope="session")
def api_server(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    state_dir = tmp_path_factory.mktemp("lm-agent-api")
    access_log = state_dir / "access.log"
    access_options = f"--access-logfile {access_log} --access-logformat '%(m)s %(U)s %(s)s'"
    server = ApiServer(
        state_dir=state_dir,
        database_url=postgres.ensure_database("lm_agent_test"),
        port=free_port(),
        extra_env={"GUNICORN_CMD_ARGS": access_options},
    )
    server.migrate()
    admin = server.create_client("agent-tests-admin", [ADMIN_PERMISSION])
    server.start()
    try:
        yield LiveApi(
            server=server,
            access_log=access_log,
            database_url=server.database_url,
            state_dir=state_dir,
            admin=ApiClient(client_config(server.url, admin, state_dir / "admin-cache")),
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster_client(api_server: LiveApi) -> dict[str, str]:
    """The OAuth client of cluster `cluster-a`'s agent, with the agent's permissions."""
    return api_server.server.create_client("cluster-a", AGENT_PERMISSIONS)


@pytest.fixture
def live_api(api_server: LiveApi) -> Iterator[LiveApi]:
    """The API with an empty catalog and access log; emptied again after the test."""
    api_server.forget_requests()
    yield api_server
    with psycopg.connect(api_server.database_url) as connection:
        connection.execute(f"TRUNCATE {CATALOG_TABLES} RESTART IDENTITY CASCADE")


def client_config(
    url: str, client: Mapping[str, str], token_cache_dir: Path, **settings: Any
) -> AgentConfig:
    """Settings of an API client for `client` ({"client_id", "client_secret"})."""
    return AgentConfig(
        api_url=url,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        oidc_issuer=url,
        token_cache_dir=str(token_cache_dir),
        **settings,
    )


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
