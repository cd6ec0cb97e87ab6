"""Throw-away pieces the benchmarks share: PostgreSQL, the API under gunicorn, its clients."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from devstack.api import ApiServer
from devstack.postgres import PostgresCluster
from devstack.processes import free_port


def start_api(
    root: Path, cleanup: ExitStack, clients: Mapping[str, Iterable[str]]
) -> tuple[ApiServer, dict[str, dict[str, str]]]:
    """A fresh PostgreSQL and a migrated API in `root` (stopped by `cleanup`), with OAuth
    clients {name: permissions}; returns the API and {name: {"client_id", "client_secret"}}."""
    postgres = PostgresCluster(datadir=root / "pgdata", port=free_port(), fast=True)
    postgres.ensure_running()
    cleanup.callback(postgres.stop)
    api = ApiServer(
        state_dir=root / "api", database_url=postgres.ensure_database("bench"), port=free_port()
    )
    api.migrate()
    credentials = {
        name: api.create_client(name, permissions) for name, permissions in clients.items()
    }
    api.start()
    cleanup.callback(api.stop)
    return api, credentials


def client_config(
    api: ApiServer, credentials: Mapping[str, str], token_cache_dir: Path, **settings: Any
) -> AgentConfig:
    """Agent settings that talk to `api` as the client `credentials`."""
    return AgentConfig(
        api_url=api.url,
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        oidc_issuer=api.url,
        token_cache_dir=str(token_cache_dir),
        **settings,
    )
