"""The simulator's JSON state file: license servers, their features and checkouts.

    {"servers": [{"type": "flexlm", "host": "lic1", "port": 27000,
                  "fault": "none", "latency": 0.0,
                  "features": [{"name": "abaqus", "total": 10}],
                  "checkouts": [{"feature": "abaqus", "user": "alice", "host": "node01",
                                 "count": 2}]}]}

Readers (the fake tools) never lock: every write goes to a temporary file renamed over the
state, so they see either the old or the new state, never a torn one. Writers take an exclusive
lock on a sidecar file for the whole read-modify-write, so concurrent commands never lose updates.
Only light imports (no pathlib, no tempfile): the fake tools read the state on every run.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

StatePath = str | os.PathLike[str]
State = dict[str, Any]
Server = dict[str, Any]

STATE_ENV = "LM_SIMULATOR_STATE"
FAULTS = ("none", "down", "hang", "garbage")


class SimulatorError(Exception):
    """A request the simulator refuses; `exit_code` is what the command exits with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def empty_state() -> State:
    return {"servers": []}


def read_state(path: StatePath) -> State:
    """The current state, with a clear error when the file is missing or not a simulator state."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise SimulatorError(f"state file {path} does not exist: run `lm-simulator init`") from None
    except OSError as error:
        raise SimulatorError(f"cannot read state file {path}: {error.strerror}") from None
    try:
        state = json.loads(text)
    except ValueError as error:
        raise SimulatorError(f"state file {path} is not valid JSON: {error}") from None
    if not isinstance(state, dict) or not isinstance(state.get("servers"), list):
        raise SimulatorError(f"state file {path} has no list of servers")
    return state


def write_state(path: StatePath, state: State) -> None:
    """Replace the state atomically: write a temporary file beside it, then rename it over.

    Call with the state lock held: the lock also makes the temporary name unique.
    """
    temporary = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(state, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


@contextmanager
def state_lock(path: StatePath) -> Iterator[None]:
    """Exclusive lock for a read-modify-write of the state at `path`."""
    try:
        lock = open(f"{os.fspath(path)}.lock", "a")  # noqa: SIM115 (held across the yield)
    except OSError as error:
        raise SimulatorError(f"cannot lock state file {path}: {error.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def changing_state(path: StatePath) -> Iterator[State]:
    """The state to modify in place; written back if the block finishes without an error."""
    with state_lock(path):
        state = read_state(path)
        yield state
        write_state(path, state)


def find_server(state: State, host: str, port: int) -> Server | None:
    for server in state["servers"]:
        if server.get("host") == host and server.get("port") == port:
            return server
    return None
