"""A munged of our own: its own key, socket and pid file, so it never meets the machine's munge.

Several test clusters, the demo and the host's /run/munge can then coexist: each Slurm cluster
points `AuthInfo=socket=...` at its own daemon.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import is_alive, read_pid, stop_pid_file

INSTALL_HINT = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"


class MungeError(RuntimeError):
    """munged is missing, did not start, or its credentials do not round-trip."""


@dataclass
class MungeDaemon:
    """munged running as root on files under `root` (which must not be writable by others)."""

    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "munge.socket"

    @property
    def key_file(self) -> Path:
        return self.root / "munge.key"

    @property
    def pid_file(self) -> Path:
        return self.root / "munged.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "munged.log"

    def start(self) -> None:
        """Create the key if needed, start munged and check that a credential round-trips."""
        if shutil.which("munged") is None:
            raise MungeError(f"munged not found: {INSTALL_HINT}")
        pid = read_pid(self.pid_file)
        if pid is not None and is_alive(pid):
            self.check()  # ours from an earlier start, still serving
            return
        # munged requires every client to be able to reach its socket folder (mode 0755).
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        if not self.key_file.exists():
            self.key_file.write_bytes(os.urandom(1024))
        self.key_file.chmod(0o400)
        started = subprocess.run(
            [
                "munged",
                f"--socket={self.socket}",
                f"--key-file={self.key_file}",
                f"--pid-file={self.pid_file}",
                f"--seed-file={self.root / 'munged.seed'}",
                f"--log-file={self.log_file}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            raise MungeError(f"munged failed to start: {started.stderr.strip()}")
        self.check()

    def check(self) -> None:
        """Encode and decode one credential through our socket (what Slurm will do)."""
        encoded = subprocess.run(
            ["munge", "-n", "-S", str(self.socket)], capture_output=True, check=False
        )
        decoded = subprocess.run(
            ["unmunge", "-S", str(self.socket)],
            input=encoded.stdout,
            capture_output=True,
            check=False,
        )
        if encoded.returncode != 0 or decoded.returncode != 0:
            raise MungeError(
                f"munge credential check failed on {self.socket}: "
                f"{(encoded.stderr + decoded.stderr).decode().strip()}"
            )

    def stop(self) -> None:
        stop_pid_file(self.pid_file)
