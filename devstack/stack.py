"""The whole License Manager on one machine: PostgreSQL, the API, simulated license servers,
a real Slurm cluster whose PrologSlurmctld/EpilogSlurmctld run the agent, and the agent's
reconcile loop. The end-to-end tests and the demo bring it up and down through `Stack`.

Everything lives under `root`; `stop()` stops only what `start()` started.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.api import ApiServer
from devstack.catalog import add_configuration
from devstack.postgres import PostgresCluster
from devstack.processes import (
    console_script,
    free_port,
    is_alive,
    read_pid,
    stop_pid_file,
    wait_for,
)
from devstack.simulator import Simulator
from devstack.slurm import SlurmCluster
from lm_common import api
from lm_common.facts import ADMIN_PERMISSION, AGENT_PERMISSIONS, slurm_license_name

# Seconds the API may take to answer one request.
HTTP_TIMEOUT = 10.0
DEMO_PERSON = "demo"
# A few reconcile cycles, on a machine busy with other test runs.
REPORT_TIMEOUT = 30.0
HOOK_SCRIPT = """#!/bin/sh
# {hook} of the devstack cluster: slurmctld runs hooks without PATH, hence absolute paths.
LM_AGENT_CONFIG={config} exec {agent} {hook}
"""


class StackError(RuntimeError):
    """A piece of the stack did not come up, or the API refused a set-up request."""


class ApiSession(api.ApiClient):
    """The API over HTTP as one OAuth client (the admin, or another cluster) uses it.

    `request` answers any status (the caller looks at it); `call` must succeed.
    """

    def __init__(self, url: str, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.client = api.ClientCredentials(
            url, credentials["client_id"], credentials["client_secret"], timeout=HTTP_TIMEOUT
        )
        super().__init__(url, self.client, timeout=HTTP_TIMEOUT)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def token(self) -> str:
        return self.fetch_token()

    def fetch_token(self) -> str:
        """The client's current token (fetched when it has none); StackError when refused."""
        try:
            return self.client.token()
        except api.ApiError as error:
            raise StackError(f"token refused: {error}") from None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request that must succeed; returns the decoded JSON body (None for 204)."""
        answer = self.request(method, path, **kwargs)
        if not answer.ok:
            raise StackError(f"{method} {path} answered {answer.status}: {answer.body}")
        return answer.body if answer.is_json else None


@dataclass(frozen=True)
class Pool:
    """One product.feature on its simulated server(s), known to the API and to Slurm."""

    product: str
    feature: str
    server_type: str
    servers: tuple[str, ...]  # "host:port", first one first (mirrors after it)
    config_id: int
    feature_id: int

    @property
    def product_feature(self) -> str:
        return f"{self.product}.{self.feature}"

    @property
    def slurm_license(self) -> str:
        """The name in Licenses= and `sbatch -L` (the agent's default template)."""
        return slurm_license_name(self.product, self.feature, self.server_type)


@dataclass
class Stack:
    """PostgreSQL + API + simulator + Slurm with the agent's hooks + the agent's reconcile loop."""

    root: Path
    api_port: int = 0
    postgres_port: int = 0
    reconcile_interval: int = 2
    fast_database: bool = True
    agent_settings: dict[str, Any] = field(default_factory=dict)
    database_url: str = ""  # an existing database instead of a PostgreSQL of our own

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        saved = self._saved()
        self.api_port = self.api_port or saved.get("api_port") or free_port()
        self.postgres_port = self.postgres_port or saved.get("postgres_port") or free_port()
        self.postgres = PostgresCluster(
            datadir=self.root / "postgres", port=self.postgres_port, fast=self.fast_database
        )
        self.api = ApiServer(state_dir=self.root / "api", database_url="", port=self.api_port)
        self.simulator = Simulator(self.root / "simulator")
        self.slurm = SlurmCluster(
            self.root / "slurm",
            licenses=saved.get("licenses", {}),
            prolog_slurmctld=self.root / "hooks" / "prolog",
            epilog_slurmctld=self.root / "hooks" / "epilog",
        )
        if "slurm_name" in saved:
            self.slurm.name = saved["slurm_name"]
        self.agent_dir = self.root / "agent"
        self.admin: ApiSession | None = None
        self.agent_client: dict[str, str] = saved.get("agent_client", {})
        self._admin_client: dict[str, str] = saved.get("admin_client", {})
        # The demo's person (admin): logs in like anyone, through lm-cli login.
        self.demo_person: dict[str, str] = saved.get("demo_person") or {
            "name": DEMO_PERSON,
            "password": secrets.token_urlsafe(12),
        }

    @property
    def saved_file(self) -> Path:
        """Ports, names, clients and licenses of this stack: a second `start()` reuses them."""
        return self.root / "stack.json"

    def _saved(self) -> dict[str, Any]:
        return json.loads(self.saved_file.read_text()) if self.saved_file.exists() else {}

    def _save(self) -> None:
        saved = {
            "api_port": self.api_port,
            "postgres_port": self.postgres_port,
            "slurm_name": self.slurm.name,
            "licenses": self.slurm.licenses,
            "admin_client": self._admin_client,
            "agent_client": self.agent_client,
            "demo_person": self.demo_person,
        }
        self.saved_file.write_text(json.dumps(saved, indent=2))
        self.saved_file.chmod(0o600)  # client secrets, the demo person's password

    @property
    def cluster_client_id(self) -> str:
        """The OAuth client of this Slurm cluster's agent (configurations name it)."""
        return self.agent_client["client_id"]

    @property
    def agent_config_file(self) -> Path:
        return self.agent_dir / "agent.yaml"

    @property
    def agent_log(self) -> Path:
        return self.agent_dir / "agent.log"

    @property
    def reconcile_pid_file(self) -> Path:
        return self.agent_dir / "reconcile.pid"

    def start(self, *, api_only: bool = False) -> None:
        """Bring every piece up in dependency order, reusing what already runs or exists.

        `api_only`: PostgreSQL, the API and the admin client only. A failure stops what came
        up, so nothing is left half started.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postgres user and munged must reach their folders
        try:
            if self.database_url:
                self.api.database_url = self.database_url
            else:
                self.postgres.ensure_running()
                self.api.database_url = self.postgres.ensure_database("license_manager")
            self.api.migrate()
            self.api.start()
            self._admin_client = self._client(self._admin_client, "admin", [ADMIN_PERMISSION])
            self.admin = ApiSession(self.api.url, self._admin_client)
            self.api.ensure_person(
                self.demo_person["name"], self.demo_person["password"], [ADMIN_PERMISSION]
            )
            if api_only:
                self._save()
                return
            self.agent_client = self._client(self.agent_client, self.slurm.name, AGENT_PERMISSIONS)
            if not self.simulator.state_file.exists():
                self.simulator.install()
            self.write_agent_config()
            self._write_hooks()
            if not self.slurm.running():
                self.slurm.start()
            if not self.reconcile_loop_running():
                self.start_reconcile_loop()
            self._save()
        except Exception:
            self.stop()
            raise

    def _client(
        self, known: dict[str, str], name: str, permissions: Iterable[str]
    ) -> dict[str, str]:
        """Credentials that work: the saved ones if the API still accepts them, else new ones."""
        if known:
            try:
                ApiSession(self.api.url, known).fetch_token()
                return known
            except StackError:
                pass  # the database was recreated: make the client again
        return self.api.create_client(name, permissions)

    def stop(self) -> None:
        """Stop the reconcile loop, Slurm, the API and PostgreSQL (only those we started)."""
        self.stop_reconcile_loop()
        self.slurm.stop()
        self.api.stop()
        self.postgres.stop()

    def write_agent_config(self, **overrides: Any) -> None:
        """agent.yaml for this stack; `overrides` (e.g. prolog_api_unreachable) win."""
        self.agent_dir.mkdir(parents=True, exist_ok=True)
        tools = {path.name: str(path) for path in sorted(self.simulator.tool_dir.iterdir())}
        tools.update(scontrol="/usr/bin/scontrol", squeue="/usr/bin/squeue")
        settings = {
            "api_url": self.api.url,
            "client_id": self.agent_client["client_id"],
            "client_secret": self.agent_client["client_secret"],
            "tools": tools,
            "tool_timeout": 2,
            "slurm_conf": str(self.slurm.conf_file),
            "stat_interval": self.reconcile_interval,
            "lock_file": str(self.agent_dir / "reconcile.lock"),
            "state_file": str(self.agent_dir / "reconcile-state.json"),
            "log_file": str(self.agent_log),
            "log_level": "DEBUG",
            "token_cache_dir": str(self.agent_dir / "cache"),
            **self.agent_settings,
            **overrides,
        }
        self.agent_config_file.write_text(yaml.safe_dump(settings))
        self.agent_config_file.chmod(0o600)

    def _write_hooks(self) -> None:
        agent = console_script("lm-agent")
        for hook, path in (
            ("prolog", self.slurm.prolog_slurmctld),
            ("epilog", self.slurm.epilog_slurmctld),
        ):
            assert path is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                HOOK_SCRIPT.format(hook=hook, config=self.agent_config_file, agent=agent)
            )
            path.chmod(0o755)

    def start_reconcile_loop(self) -> None:
        """`lm-agent reconcile --loop` in the background: cron's job, every reconcile_interval s."""
        with open(self.agent_dir / "reconcile.out", "ab") as output:
            process = subprocess.Popen(
                [console_script("lm-agent"), "reconcile", "--loop"],
                env={**os.environ, "LM_AGENT_CONFIG": str(self.agent_config_file)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self.reconcile_pid_file.write_text(f"{process.pid}\n")

    def stop_reconcile_loop(self) -> None:
        stop_pid_file(self.reconcile_pid_file)

    def reconcile_loop_running(self) -> bool:
        pid = read_pid(self.reconcile_pid_file)
        return pid is not None and is_alive(pid)

    def add_pool(
        self,
        product: str,
        feature: str,
        total: int,
        server_type: str = "flexlm",
        mirrors: int = 1,
        grace_time: int = 300,
        reserved: int = 0,
        cluster_client_id: str | None = None,
        servers: tuple[str, ...] = (),
    ) -> Pool:
        """A license pool end to end: simulated server(s), API configuration, Slurm license.

        Pass `servers` to configure an existing pool again (another cluster sharing it).
        """
        admin = self._admin()
        if not servers:
            for _ in range(mirrors):
                server = self._unused_server_address()
                self.simulator.add_server(server_type, server, {feature: total})
                servers += (server,)
        client_id = cluster_client_id or self.cluster_client_id
        try:
            configuration = add_configuration(
                admin,
                client_id,
                {f"{product}.{feature}": reserved},
                servers,
                name=f"{product}-{feature}-{client_id}",
                grace_time=grace_time,
                server_type=server_type,
            )
        except api.ApiError as error:
            raise StackError(str(error)) from None
        feature_id = configuration["feature_ids"][f"{product}.{feature}"]
        pool = Pool(product, feature, server_type, servers, configuration["id"], feature_id)
        if client_id == self.cluster_client_id:
            self.slurm.set_licenses({**self.slurm.licenses, pool.slurm_license: total})
            self._save()
            wait_for(
                lambda: self.feature(pool)["reported_at"],
                REPORT_TIMEOUT,
                f"the agent's first report of {pool.product_feature}",
            )
        return pool

    def _unused_server_address(self) -> str:
        """127.0.0.1:PORT that no simulated server has yet: they listen nowhere, so
        free_port alone may hand out the same port twice."""
        state = json.loads(self.simulator.state_file.read_text())
        taken = {server["port"] for server in state["servers"]}
        port = free_port()
        while port in taken:
            port = free_port()
        return f"127.0.0.1:{port}"

    def _admin(self) -> ApiSession:
        if self.admin is None:
            raise StackError("the stack is not started")
        return self.admin

    def feature(self, pool: Pool) -> dict[str, Any]:
        """The feature as the API shows it (total, used, booked, available, ...)."""
        return self._admin().call("GET", f"/lm/features/{pool.feature_id}")

    def api_jobs(self) -> list[dict[str, Any]]:
        """Every job record the API holds (all clusters), with its bookings."""
        return self._admin().call("GET", "/lm/jobs", params={"page_size": 100})

    def api_job(self, slurm_job_id: int) -> dict[str, Any] | None:
        """This cluster's job record in the API for a Slurm job, or None when there is none."""
        for job in self.api_jobs():
            if job["slurm_job_id"] == str(slurm_job_id) and (
                job["cluster_client_id"] == self.cluster_client_id
            ):
                return job
        return None

    def license_failures(self, slurm_job_id: int) -> list[dict[str, Any]]:
        """This cluster's license-failure events of a Slurm job (the epilog's), oldest first."""
        events = self._admin().call(
            "GET",
            "/lm/license_failures",
            params={"slurm_job_id": str(slurm_job_id), "page_size": 100},
        )
        return [event for event in events if event["cluster_client_id"] == self.cluster_client_id]

    def reserved(self, pool: Pool) -> int:
        """Tokens of the pool the agent's license-only reservation holds right now in Slurm."""
        return self.slurm.license_usage()[pool.slurm_license]["Reserved"]

    def describe(self) -> str:
        """Where things are: for a failing test's message and for the demo."""
        return json.dumps(
            {
                "api": self.api.url,
                "agent_config": str(self.agent_config_file),
                "agent_log": str(self.agent_log),
                "slurm_conf": str(self.slurm.conf_file),
                "simulator_state": str(self.simulator.state_file),
            },
            indent=2,
        )
