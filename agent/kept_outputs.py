"""Tool outputs the parsers did not understand, kept for the admin in the agent's state directory.

An output the agent cannot read fails closed (the pool is fully reserved), so the admin needs the
exact bytes to report or fix the format. One file per failed read, named after the time, server
type and address; only the newest KEPT_OUTPUTS files stay, so a server that keeps printing
something new cannot fill the disk (a cycle a minute would otherwise write 1,440 files a day).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

KEPT_OUTPUTS = 20
SUBDIRECTORY = "unparsable"
KEPT_HEADER = b"# command: "  # the first line of a kept file, then the output byte for byte


def keep_output(state_dir: str, label: str, command: str, output: bytes) -> Path:
    """Write `output` (with the command that printed it) under state_dir; returns the file.

    Raises OSError when the directory cannot be written: the caller logs it and goes on.
    """
    folder = Path(state_dir) / SUBDIRECTORY
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    safe_label = "".join(c if c.isalnum() or c in "._-" else "_" for c in label)
    path = folder / f"{stamp}-{os.getpid()}-{safe_label}.txt"
    path.write_bytes(KEPT_HEADER + command.encode() + b"\n" + output)
    _prune(folder)
    return path


def _prune(folder: Path) -> None:
    """Delete all but the newest KEPT_OUTPUTS files (names start with the UTC time)."""
    files = sorted(folder.glob("*.txt"))
    for old in files[:-KEPT_OUTPUTS]:
        old.unlink(missing_ok=True)  # another agent run may have pruned it first
