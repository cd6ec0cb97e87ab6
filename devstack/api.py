"""The API under gunicorn, started and stopped by pid file, and OAuth clients made for it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import (
    DeadlineExceeded,
    console_script,
    is_alive,
    read_pid,
    stop_pid_file,
    wait_for,
)


class ApiError(RuntimeError):
    """The API could not be migrated, started or reached."""


@dataclass
class ApiServer:
    """gunicorn serving `backend:create_app()` on 127.0.0.1:port with its own pid and log files."""

    state_dir: Path
    database_url: str
    port: int
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "gunicorn.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "api.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LM_DATABASE_URL": self.database_url,
            "LM_PUBLIC_URL": self.url,
            **self.extra_env,
        }

    def backend_command(self, *args: str, stdin: str | None = None) -> str:
        """Run `lm-backend ARGS` against this deployment's database; return its stdout."""
        result = subprocess.run(
            [console_script("lm-backend"), *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ApiError(f"lm-backend {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def migrate(self) -> None:
        self.backend_command("db", "upgrade")

    def ensure_person(self, name: str, password: str, permissions: Iterable[str]) -> None:
        """A person who logs in with this password: made, or given the password again."""
        try:
            self.backend_command("users", "set-password", name, stdin=password + "\n")
        except ApiError:  # a new database: no such person yet
            self.backend_command(
                "users", "create", "--name", name, "--permissions", *permissions,
                stdin=password + "\n",
            )  # fmt: skip

    def create_client(self, name: str, permissions: Iterable[str]) -> dict[str, str]:
        """A new OAuth client: `{"client_id", "client_secret"}`."""
        output = self.backend_command(
            "clients", "create", "--name", name, "--permissions", *permissions, "--json"
        )
        return json.loads(output)

    def running_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and is_alive(pid) else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/lm/health", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30) -> None:
        """Start gunicorn unless ours already runs; wait until /lm/health answers 200."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is None:
            subprocess.run(
                [
                    console_script("gunicorn"),
                    "--bind", f"127.0.0.1:{self.port}",
                    "--workers", str(self.workers),
                    "--pid", str(self.pid_file),
                    "--error-logfile", str(self.log_file),
                    "--daemon",
                    "backend:create_app()",
                ],
                env=self.env(),
                check=True,
            )  # fmt: skip
        try:
            wait_for(self.healthy, timeout, f"the API on {self.url}", interval=0.2)
        except DeadlineExceeded:
            raise ApiError(f"the API did not answer on {self.url}; see {self.log_file}") from None

    def stop(self, timeout: float = 15) -> None:
        stop_pid_file(self.pid_file, timeout)
