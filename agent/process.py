"""Running external tools (license-server tools, scontrol, squeue) with a hard time limit.

Every tool dies with the agent: it runs in its own process group, which is killed when the tool
passes its time limit and when the agent leaves `run_command` any other way (an exception, Ctrl-C,
SIGTERM in `--loop`); `kill_running_tools` kills the groups still running (atexit does it too);
and the kernel sends the tool SIGKILL when the agent's thread that started it dies, even by
SIGKILL (PR_SET_PDEATHSIG), so a killed reconcile never leaves a hung tool behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    """What a finished command printed and how it exited (`raw_stdout`: the bytes themselves)."""

    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


def minimal_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every tool runs with: a fixed PATH and C locale, plus `extra`."""
    environment = {"PATH": MINIMAL_PATH, "LANG": "C", "LC_ALL": "C"}
    environment.update(extra or {})
    return environment


# prctl(2) option: the signal the kernel sends a process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1
_running_groups: set[int] = set()  # process groups of tools still running
_running_lock = threading.Lock()


@functools.cache
def _prctl() -> Any:
    """libc's prctl(2), or None where there is none (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return prctl


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function giving the child SIGKILL when its parent dies (Linux only, else None).

    prctl is looked up before the fork: the child then makes one foreign call and takes no lock
    another thread could hold (preexec functions run between fork and exec, threads or not).
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


def _utf8(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    decode: Callable[[bytes], str] = _utf8,
) -> CommandResult:
    """Run `argv` in its own process group; kill the whole group when it passes `timeout`.

    Killing the group (not only the child) matters: vendor tools are often wrapper scripts,
    and a hung grandchild would otherwise keep running after every cron cycle. The group is
    killed too when anything else interrupts the wait (see the module docstring).
    `decode` turns stdout into text (license tools may write UTF-16); stderr is read as UTF-8.
    Raises OSError when the executable cannot be started and CommandTimeout on time-out.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else minimal_environment(),
        start_new_session=True,
        preexec_fn=_parent_death_signal(),
    )
    with _running_lock:
        _running_groups.add(process.pid)
    try:
        stdout, stderr = process.communicate(
            stdin.encode() if stdin is not None else None, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise CommandTimeout(argv, timeout) from None
    except BaseException:
        _kill_group(process)
        raise
    finally:
        with _running_lock:
            _running_groups.discard(process.pid)
    return CommandResult(process.returncode, decode(stdout), _utf8(stderr), stdout)


@atexit.register
def kill_running_tools() -> None:
    """SIGKILL the process group of every tool still running (the agent is stopping)."""
    with _running_lock:
        groups = list(_running_groups)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group, then reap the child and close its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
