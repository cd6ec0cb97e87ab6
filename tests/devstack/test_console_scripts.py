"""Console scripts are found in the project's venv, never on the caller's PATH.

A fresh clone run as `env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ./scripts/test` has no venv on
PATH: tests that ran `lm-cli` by bare name failed there and passed only where the commands
happened to be installed globally.
"""

from __future__ import annotations

import ast
import subprocess
from importlib.metadata import distribution
from pathlib import Path

import pytest

from devstack.processes import SCRIPTS_DIR, console_script

ROOT = Path(__file__).resolve().parents[2]
PROJECT_SCRIPTS = sorted(
    entry.name
    for entry in distribution("slurm-license-manager").entry_points
    if entry.group == "console_scripts"
)
# What slurmctld and cron give a process: the system's directories only.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.mark.parametrize("name", PROJECT_SCRIPTS)
def test_console_script_runs_without_the_venv_on_path(name: str) -> None:
    result = subprocess.run(
        [console_script(name), "--help"],
        env={"PATH": SYSTEM_PATH},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: {name}" in result.stdout.lower()


def test_an_unknown_console_script_names_the_path_it_looked_at() -> None:
    with pytest.raises(FileNotFoundError, match=str(SCRIPTS_DIR / "lm-nothing")):
        console_script("lm-nothing")


def bare_script_calls(path: Path) -> list[int]:
    """Lines where a list literal starts with a project console script's bare name (an argv)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.List)
        and node.elts
        and isinstance(node.elts[0], ast.Constant)
        and node.elts[0].value in PROJECT_SCRIPTS
    ]


def test_no_test_or_tool_runs_a_console_script_by_bare_name() -> None:
    offenders = {
        str(path.relative_to(ROOT)): lines
        for folder in ("tests", "devstack", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := bare_script_calls(path))
    }
    assert offenders == {}, "use devstack.processes.console_script(name) instead"
