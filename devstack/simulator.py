"""Simulated license servers for the tests, the demo and the benchmarks: one lm-simulator state
file and the fake tools (lmutil, rlmutil, ...) installed beside it that read it.

Commands run in this process through lm-simulator's own entry point (the same code and errors as
the console script, without starting a Python per command).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from agent.config import ToolPaths
from agent.simulator.main import main as simulator_main
from lm_common.facts import TOOL_BY_SERVER_TYPE


class SimulatorRefused(RuntimeError):
    """An lm-simulator command exited non-zero; the message holds its error line."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Simulator:
    """The state in `root`/state.json, the fake tools in `root`/bin."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def tool_dir(self) -> Path:
        return self.root / "bin"

    def install(self) -> Simulator:
        """An empty state and the fake tools (kept as they are when already there)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.state_file.exists():
            self.run("init")
        if not self.tool_dir.exists():
            self.run("install-tools", str(self.tool_dir))
        return self

    def command(self, *arguments: str) -> int:
        """The exit code of `lm-simulator --state STATE ARGUMENTS` (output on stdout/stderr)."""
        try:
            return simulator_main(["--state", str(self.state_file), *arguments])
        except SystemExit as usage_error:  # argparse
            return usage_error.code if isinstance(usage_error.code, int) else 2

    def run(self, *arguments: str) -> str:
        """`lm-simulator --state STATE ARGUMENTS`; its output, or SimulatorRefused."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            exit_code = self.command(*arguments)
        if exit_code != 0:
            message = err.getvalue().strip() or f"exit code {exit_code}"
            raise SimulatorRefused(f"lm-simulator {' '.join(arguments)}: {message}", exit_code)
        return out.getvalue()

    def add_server(
        self, server_type: str, address: str, features: Mapping[str, int] | None = None
    ) -> str:
        """A license server at HOST:PORT offering `features` ({name: total}); its address."""
        host, port = address.rsplit(":", 1)
        self.run("add-server", "--type", server_type, "--host", host, "--port", port)
        for name, total in (features or {}).items():
            self.add_feature(address, name, total)
        return address

    def add_feature(self, address: str, name: str, total: int) -> None:
        self.run("add-feature", "--server", address, name, "--total", str(total))

    def checkout(self, address: str, feature: str, user: str, host: str, count: int) -> None:
        self.run("checkout", "--server", address, feature, "--user", user, "--host", host,
                 "--count", str(count))  # fmt: skip

    def checkin(self, address: str, user: str) -> None:
        self.run("checkin", "--server", address, "--user", user)

    def fault(self, address: str, fault: str) -> None:
        """Make a server `down`, `hang`, print `garbage`, or behave again (`none`)."""
        self.run("fault", "--server", address, fault)

    def tool(self, server_type: str) -> str:
        """The fake tool that reads servers of this type."""
        return str(self.tool_dir / TOOL_BY_SERVER_TYPE[server_type])

    def tool_paths(self) -> ToolPaths:
        """The agent's `tools` settings pointing at the fake tools (and the real Slurm commands)."""
        return ToolPaths.in_directory(self.tool_dir, "/usr/bin/scontrol", "/usr/bin/squeue")

    def running_tools(self) -> list[int]:
        """Pids of fake tools still running (a killed, hung tool must not linger)."""
        prefix = str(self.tool_dir).encode()
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if any(arg.startswith(prefix) for arg in argv):
                pids.append(int(cmdline.parent.name))
        return pids
