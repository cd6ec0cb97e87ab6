"""Which output files of an ended job the epilog reads, and how safely (agent.job_output)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.job_output import Unreadable, expand_pattern, output_files, read_tail

JOB = {
    "SLURM_JOB_ID": "1234",
    "SLURM_JOB_USER": "alice",
    "SLURM_JOB_NAME": "cfd run",
    "SLURM_JOB_NODELIST": "node[03-04]",
    "SLURM_JOB_WORK_DIR": "/home/alice/case",
}
ARRAY_TASK = {**JOB, "SLURM_ARRAY_JOB_ID": "1200", "SLURM_ARRAY_TASK_ID": "7"}


@pytest.mark.parametrize(
    ("pattern", "environ", "expected"),
    [
        ("slurm-%j.out", JOB, "slurm-1234.out"),
        ("/scratch/%u/%x-%j.log", JOB, "/scratch/alice/cfd run-1234.log"),
        ("out-%A_%a.txt", ARRAY_TASK, "out-1200_7.txt"),
        ("out-%4a-%N-%J-%s-%t-%n.txt", ARRAY_TASK, "out-0007-node03-1234.batch-batch-0-0.txt"),
        ("100%%-%j", JOB, "100%-1234"),
        ("plain\\%j.out", JOB, "plain%j.out"),  # a backslash turns patterns off, as in Slurm
        ("unknown-%q.out", JOB, "unknown-%q.out"),
        ("task-%a.out", JOB, None),  # not an array job: the name cannot be known
    ],
)
def test_filename_patterns_expand_as_slurmstepd_does(pattern, environ, expected) -> None:
    assert expand_pattern(pattern, environ) == expected


def test_slurm_names_stdout_and_stderr_relative_to_the_work_dir() -> None:
    environ = {**JOB, "SLURM_JOB_STDOUT": "slurm-%j.out", "SLURM_JOB_STDERR": "/tmp/../err-%j"}

    assert output_files(environ) == ["/home/alice/case/slurm-1234.out", "/err-1234"]


def test_stderr_in_the_stdout_file_is_read_once_and_dev_null_never() -> None:
    assert output_files({**JOB, "SLURM_JOB_STDOUT": "/o/%j.out"}) == ["/o/1234.out"]
    environ = {**JOB, "SLURM_JOB_STDOUT": "/dev/null", "SLURM_JOB_STDERR": "/e/%j"}
    assert output_files(environ) == ["/e/1234"]


def test_sbatchs_default_name_when_slurm_names_none() -> None:
    assert output_files(JOB) == ["/home/alice/case/slurm-1234.out"]
    assert output_files(ARRAY_TASK) == ["/home/alice/case/slurm-1200_7.out"]


def tail(path: Path, limit: int = 1000, **kwargs) -> str:
    return read_tail(str(path), owner=kwargs.pop("owner", os.getuid()), limit=limit, **kwargs)


def test_only_the_tail_is_read_and_its_cut_first_line_dropped(tmp_path: Path) -> None:
    output = tmp_path / "huge.out"
    with output.open("wb") as stream:
        stream.truncate(3 * 1024**3)  # 3 GiB (sparse): reading it all would take seconds
        stream.seek(0, os.SEEK_END)
        stream.write(b"abcdef\nlast line: license not available\n")

    assert tail(output, limit=30) == ""  # the 30 bytes hold only part of one line
    assert tail(output, limit=45) == "last line: license not available\n"


def test_binary_output_is_text_with_replacements(tmp_path: Path) -> None:
    output = tmp_path / "binary.out"
    output.write_bytes(b"\x00\xff\xfe license not available \x00\n")

    assert tail(output) == "\ufffd\ufffd license not available \n"


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("license not available")
    (tmp_path / "link.out").symlink_to(secret)

    with pytest.raises(Unreadable, match="symbolic link"):
        tail(tmp_path / "link.out")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.out"
    os.mkfifo(fifo)

    with pytest.raises(Unreadable, match="not a regular file"):
        tail(fifo)


def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "other.out"
    output.write_text("license not available")

    with pytest.raises(Unreadable, match="not the job's uid"):
        tail(output, owner=os.getuid() + 1)


@pytest.mark.parametrize("path", ["/proc/self/environ", "/dev/zero", "/sys/kernel/notes"])
def test_system_folders_are_never_read(path: str) -> None:
    with pytest.raises(Unreadable, match="system folder"):
        read_tail(path, owner=None, limit=100)


def test_files_outside_the_allowed_folders_are_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "scratch"
    allowed.mkdir()
    (allowed / "in.out").write_text("ok\n")
    (tmp_path / "out.out").write_text("license not available\n")
    (allowed / "escape").symlink_to(tmp_path)  # a folder link out of the allowed tree

    assert tail(allowed / "in.out", allowed=[str(allowed)]) == "ok\n"
    for outside in (tmp_path / "out.out", allowed / "escape" / "out.out"):
        with pytest.raises(Unreadable, match="outside the allowed folders"):
            tail(outside, allowed=[str(allowed)])


def test_missing_and_unreadable_files_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(Unreadable, match="No such file"):
        tail(tmp_path / "missing.out")
    with pytest.raises(Unreadable, match="not a regular file"):
        tail(tmp_path)


def test_a_path_with_control_characters_cannot_forge_a_log_line(tmp_path: Path) -> None:
    with pytest.raises(Unreadable) as refused:
        tail(tmp_path / "x.out\n2026-01-01 INFO job 1 requeued")
    assert "\n" not in str(refused.value) and "\\n2026" in str(refused.value)
