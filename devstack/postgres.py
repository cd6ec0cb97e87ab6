"""A PostgreSQL cluster of our own: initdb/pg_ctl run as the `postgres` user when we are root."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

# Test clusters trade durability for speed; never used for the demo or production.
FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, initialised or started."""


def postgres_bin() -> Path:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresError("PostgreSQL server binaries not found: apt-get install postgresql")


def _as_owner(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: hand them to the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresCluster:
    """One data folder and the server that runs on it, listening on 127.0.0.1:port."""

    datadir: Path
    port: int
    fast: bool = False
    # More server settings ("-c name=value ..."), e.g. for replication tests.
    options: str = ""

    @property
    def socket_dir(self) -> Path:
        return self.datadir

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresError(
                f"{' '.join(command)} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    def is_running(self) -> bool:
        pg_ctl = str(postgres_bin() / "pg_ctl")
        status = subprocess.run(
            _as_owner([pg_ctl, "-D", str(self.datadir), "status"]),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def ensure_running(self) -> None:
        """Create the data folder if needed and start the server if it is down."""
        bindir = postgres_bin()
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.datadir, "postgres", "postgres")
            self.datadir.chmod(0o700)
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.datadir),
                    "-U", "postgres",
                    "-A", "trust",
                    "-E", "UTF8",
                    "--locale=C.UTF-8",
                    *(["--no-sync"] if self.fast else []),
                ]
            )  # fmt: skip
        if self.is_running():
            return
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir}"
        if self.fast:
            options += f" {FAST_OPTIONS} -c max_connections=200"
        if self.options:
            options += f" {self.options}"
        self._run(
            [
                str(bindir / "pg_ctl"),
                "-D", str(self.datadir),
                "-l", str(self.datadir / "server.log"),
                "-w", "-t", "60",
                "-o", options,
                "start",
            ]
        )  # fmt: skip

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(postgres_bin() / "pg_ctl"), "-D", str(self.datadir), *args])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode `immediate` is a crash (no shutdown checkpoint)."""
        if self.is_running():
            self._pg_ctl("-m", mode, "-w", "stop")

    def start_standby(self, datadir: Path, port: int) -> PostgresCluster:
        """A streaming standby of this running server: pg_basebackup -R, then started.

        It uses the same settings; initdb's pg_hba.conf already trusts replication from
        127.0.0.1, and PostgreSQL 15's defaults (wal_level replica, 10 WAL senders) allow it.
        """
        datadir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        datadir.chmod(0o700)
        self._run(
            [
                str(postgres_bin() / "pg_basebackup"),
                "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "-D", str(datadir), "-R", "-X", "stream", "--checkpoint=fast",
                *(["--no-sync"] if self.fast else []),
            ]
        )  # fmt: skip
        standby = PostgresCluster(datadir=datadir, port=port, fast=self.fast, options=self.options)
        standby.ensure_running()
        return standby

    def promote(self) -> None:
        """Make this standby a primary (what a site's failover tooling does)."""
        self._pg_ctl("-w", "promote")

    def ensure_database(self, dbname: str) -> str:
        """Create the database if missing; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return self.url(dbname)
