"""The output files of an ended job, as EpilogSlurmctld may read them: named by Slurm, bounded.

Slurm 22.05 gives EpilogSlurmctld SLURM_JOB_STDOUT and SLURM_JOB_STDERR (measured on the real
22.05.8, see docs/agent.md) but as submitted: filename patterns such as `slurm-%j.out` are not
expanded, relative names are relative to SLURM_JOB_WORK_DIR, and SLURM_JOB_STDERR is absent when
stderr goes to the stdout file. `output_files` expands them as slurmstepd does for a batch job.

`read_tail` reads at most `limit` bytes from the end of one file and only when it is safe: the
epilog runs as SlurmUser (often root) on the controller, and the job's user chooses these names.
So the last component must not be a symlink (O_NOFOLLOW), the file must be a regular file (no
FIFO that blocks, no device), owned by the job's user, outside /proc, /sys and /dev and, when
the admin lists folders, inside one of them. Nothing from the file is ever run or followed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping, Sequence

from agent.slurm_env import first_host

# Never read from these, whatever a job names (pseudo-files, devices).
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")
_PLACEHOLDER = re.compile(r"%(\d*)([%AaJjNnstux])")


class Unreadable(Exception):
    """A named output file is missing, refused or unreadable; the message says which and why."""


def expand_pattern(pattern: str, environ: Mapping[str, str]) -> str | None:
    """`slurm-%A_%a.out` -> `slurm-12_3.out` as slurmstepd names a batch job's file.

    None when the pattern needs a value the environment does not give (then the file's
    name is unknown and it is not read). A pattern holding a backslash is taken literally,
    as Slurm does.
    """
    if "\\" in pattern:
        return pattern.replace("\\", "")
    job_id = environ.get("SLURM_JOB_ID", "")
    values = {
        "%": "%",
        "A": environ.get("SLURM_ARRAY_JOB_ID") or job_id,
        "a": environ.get("SLURM_ARRAY_TASK_ID"),
        "J": f"{job_id}.batch",
        "j": job_id,
        "N": _first_node(environ),
        "n": "0",
        "s": "batch",
        "t": "0",
        "u": environ.get("SLURM_JOB_USER"),
        "x": environ.get("SLURM_JOB_NAME"),
    }
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        width, key = match.groups()
        value = values[key]
        if value is None or (key != "%" and not value):
            missing = True
            return ""
        if width and value.isdigit():
            return value.zfill(min(int(width), 10))
        return value

    expanded = _PLACEHOLDER.sub(replace, pattern)
    return None if missing else expanded


def _first_node(environ: Mapping[str, str]) -> str | None:
    # slurmstepd puts its own short host name; the first node of the job is that host when,
    # as usual, Slurm's NodeName is the host name.
    try:
        return first_host(environ.get("SLURM_JOB_NODELIST"))
    except ValueError:
        return None


def output_files(environ: Mapping[str, str]) -> list[str]:
    """The job's stdout and stderr files (one when they are the same), absolute, expanded."""
    stdout = environ.get("SLURM_JOB_STDOUT") or (
        "slurm-%A_%a.out" if environ.get("SLURM_ARRAY_TASK_ID") else "slurm-%j.out"
    )
    stderr = environ.get("SLURM_JOB_STDERR") or stdout
    work_dir = environ.get("SLURM_JOB_WORK_DIR", "")
    files: list[str] = []
    for pattern in (stdout, stderr):
        name = expand_pattern(pattern, environ)
        if name is None or name == "/dev/null":
            continue
        if not name.startswith("/"):
            if not work_dir.startswith("/"):
                continue
            name = os.path.join(work_dir, name)
        name = os.path.normpath(name)
        if name not in files:
            files.append(name)
    return files


def read_tail(path: str, *, owner: int | None, limit: int, allowed: Sequence[str] = ()) -> str:
    """The last `limit` bytes of `path` as text (undecodable bytes replaced, NULs dropped).

    Raises Unreadable (never anything else for a file problem) when the file may not or
    cannot be read.
    """
    _check_place(path, os.path.realpath(path), allowed)  # before opening: never touch a device
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise Unreadable(f"{shown(path)}: {_reason(error)}") from None
    try:
        # Again on what was opened: a folder swapped for a symlink meanwhile changes nothing.
        _check_place(path, os.readlink(f"/proc/self/fd/{descriptor}"), allowed)
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise Unreadable(f"{shown(path)}: not a regular file")
        if owner is not None and status.st_uid != owner:
            raise Unreadable(
                f"{shown(path)}: owned by uid {status.st_uid}, not the job's uid {owner}"
            )
        start = max(0, status.st_size - limit)
        data = os.pread(descriptor, limit, start)
    except OSError as error:
        raise Unreadable(f"{shown(path)}: {_reason(error)}") from None
    finally:
        os.close(descriptor)
    text = data.replace(b"\0", b"").decode("utf-8", errors="replace")
    if start > 0:
        text = text.partition("\n")[2]  # the first line is cut: drop it
    return text


def shown(path: str) -> str:
    """A path as log lines show it: quoted with escapes when it holds control characters (the
    job's user chose it; a newline in it must not forge a log line)."""
    return path if path.isprintable() else repr(path)


def _check_place(path: str, real: str, allowed: Sequence[str]) -> None:
    if _under(real, FORBIDDEN_ROOTS):
        raise Unreadable(f"{shown(path)}: in a system folder ({real})")
    if allowed and not _under(real, allowed):
        raise Unreadable(f"{shown(path)}: outside the allowed folders ({real})")


def _reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "is a symbolic link"
    return error.strerror or str(error)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
