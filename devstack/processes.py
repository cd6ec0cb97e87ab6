"""Small process helpers shared by the devstack services: polling with a deadline, pid files."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Where pip put this interpreter's console scripts: the venv's bin/ when run from the venv.
SCRIPTS_DIR = Path(sysconfig.get_path("scripts"))


class DeadlineExceeded(TimeoutError):
    """A condition polled by `wait_for` did not become true in time."""


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Poll `check` until it returns something truthy; raise with `what` when `timeout` passes.

    Tests and start-ups wait on real state this way instead of sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def console_script(name: str) -> str:
    """The absolute path of a console script installed with this interpreter (the project's venv).

    The one way tests and devstack find `lm-cli`, `lm-backend`, `gunicorn`, ...: never by bare
    name, so nothing depends on the caller's PATH (CI and `env -i` runs do not have the venv on it).
    """
    path = SCRIPTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: install the project into this interpreter's environment first "
            "(scripts/lib.sh's ensure_venv, or pip install -e '.[test]')"
        )
    return str(path)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command name, which is in parentheses and may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(pid_file: Path) -> int | None:
    """The pid written in a daemon's pid file, or None when there is no usable file."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM one process, SIGKILL it if it is still there after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_for(lambda: not is_alive(pid), timeout, f"process {pid} to exit")
    except DeadlineExceeded:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_for(lambda: not is_alive(pid), 5.0, f"process {pid} to die after SIGKILL")


def kill(pids: list[int]) -> None:
    """SIGKILL processes and wait until they are gone (leftovers of a throw-away service)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        wait_for(lambda pid=pid: not is_alive(pid), 5.0, f"process {pid} to die after SIGKILL")


def stop_pid_file(pid_file: Path, timeout: float = 10.0) -> None:
    """Stop the daemon named by a pid file we wrote (or asked the daemon to write), if alive."""
    pid = read_pid(pid_file)
    if pid is not None and is_alive(pid):
        terminate(pid, timeout)
    pid_file.unlink(missing_ok=True)


def pids_with_environment(name: str, value: str) -> Iterator[int]:
    """Processes whose environment holds `name=value`: how a service finds every child it spawned.

    Daemons and the jobs they run inherit a marker variable from us, so this finds them even
    after they detached (slurmstepd, job scripts) without matching on command names.
    """
    marker = f"{name}={value}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environment.split(b"\0") and is_alive(int(entry.name)):
            yield int(entry.name)
