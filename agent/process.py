"""Running external tools (license-server tools, scontrol, squeue) with a hard time limit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# cron and slurmctld's hooks give no PATH: tools get this one explicitly, nothing inherited.
MINIMAL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CommandTimeout(Exception):
    """The command ran past its time limit and its whole process group was killed."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{' '.join(argv)} timed out after {timeout:g} s and was killed")
        self.argv = list(argv)
        self.timeout = timeout


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str


def minimal_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every tool runs with: a fixed PATH and C locale, plus `extra`."""
    environment = {"PATH": MINIMAL_PATH, "LANG": "C", "LC_ALL": "C"}
    environment.update(extra or {})
    return environment


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run `argv` in its own process group; kill the whole group when it passes `timeout`.

    Killing the group (not only the child) matters: vendor tools are often wrapper scripts,
    and a hung grandchild would otherwise keep running after every cron cycle.
    Raises OSError when the executable cannot be started and CommandTimeout on time-out.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else minimal_environment(),
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise CommandTimeout(argv, timeout) from None
    return CommandResult(process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process group, then reap the child and close its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
