"""README's Quick start command 1 (`scripts/up` runs `python -m devstack up`) does what README says:
the whole loop comes up, the printed `sbatch` tries work, a second run reuses everything, and
`scripts/down` stops every process it started, jobs included.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.processes import console_script, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

PROJECT_DIR = Path(__file__).resolve().parents[2]


def devstack(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *arguments],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes that run from, or name a file in, the demo's folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in command:
            found.append(command)
    return found


@pytest.fixture
def demo_env() -> Iterator[dict[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="lm-test-demo-"))
    os.chmod(root, 0o755)
    env = {
        **os.environ,
        "LM_DEV_STATE": str(root / "state"),
        "LM_API_PORT": str(free_port()),
        "LM_PG_PORT": str(free_port()),
        "XDG_CONFIG_HOME": str(root / "config"),  # lm-cli's login of the demo person
    }
    yield env
    devstack("down", env=env)
    shutil.rmtree(root, ignore_errors=True)


def printed(output: str, pattern: str) -> str:
    match = re.search(pattern, output)
    assert match, f"{pattern!r} not in the printed instructions:\n{output}"
    return match.group(1)


def test_up_brings_the_whole_loop_up_reuses_it_and_down_stops_it(
    demo_env: dict[str, str],
) -> None:
    first = devstack("up", env=demo_env)
    assert first.returncode == 0, first.stderr
    api = f"http://127.0.0.1:{demo_env['LM_API_PORT']}"
    assert requests.get(f"{api}/lm/health", timeout=5).json() == {
        "status": "ok",
        "database": "ok",
    }
    docs = requests.get(printed(first.stdout, r"Swagger UI: (\S+)"), timeout=5)
    assert docs.status_code == 200 and "/lm/docs/static/swagger-ui-bundle.js" in docs.text
    token = printed(first.stdout, r"\n(eyJ\S+)\n")
    features = requests.get(
        f"{api}/lm/features", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    assert [(f["product"]["name"], f["name"], f["total"]) for f in features] == [
        ("abaqus", "abaqus", 10)
    ]

    # The printed tries, as a user pastes them: the desktop's 3 tokens are reserved, 4 fit.
    slurm_env = {
        "PATH": os.environ["PATH"],
        "SLURM_CONF": printed(first.stdout, r"export SLURM_CONF=(\S+)"),
    }
    license_name = printed(first.stdout, r"sbatch -L (\S+):4")

    def slurm(*argv: str) -> str:
        return subprocess.run(
            argv, env=slurm_env, capture_output=True, text=True, check=True
        ).stdout

    def submit(count: int, command: str) -> str:
        """`sbatch -L LICENSE:count` as README prints it (job output discarded)."""
        return slurm(
            "sbatch", "--parsable", "--output=/dev/null", "-L", f"{license_name}:{count}",
            "--wrap", command,
        ).strip()  # fmt: skip

    wait_for(lambda: "Reserved=3" in slurm("scontrol", "show", "lic", "-o"), 30, "reserve 3")
    fits = submit(4, "sleep 300")
    wait_for(lambda: slurm("squeue", "-h", "-j", fits, "-o", "%T").strip() == "RUNNING", 30,
             "the job that fits to run")  # fmt: skip
    too_big = submit(6, "true")
    wait_for(lambda: slurm("squeue", "-h", "-j", too_big, "-o", "%r").strip() == "Licenses", 30,
             "the job that does not fit to wait for licenses")  # fmt: skip

    # The printed license-failure try: requeued once by the epilog, then it completes.
    failing = slurm(*shlex.split(printed(first.stdout, r"\n  (sbatch -L \S+:1 .*)\n")))
    failing_id = failing.split()[-1]
    wait_for(lambda: slurm("squeue", "-h", "-t", "all", "-j", failing_id, "-o", "%T").strip()
             == "COMPLETED", 60, "the license-starved job to be requeued and complete")  # fmt: skip
    assert "Restarts=1" in slurm("scontrol", "-o", "show", "job", failing_id)

    # No secret to export: lm-cli uses the demo person's stored login.
    assert "LM_CLIENT_SECRET" not in first.stdout
    state = Path(demo_env["LM_DEV_STATE"])
    assert printed(first.stdout, r"job output goes to (\S+)\)") == str(state / "slurm" / "jobs")
    assert f"--output={state}/slurm/jobs/slurm-%j.out" in first.stdout
    lm_cli = [console_script("lm-cli")]
    person_env = {**demo_env, "LM_API_URL": api}
    bookings = subprocess.run(
        [*lm_cli, "bookings", "list"], env=person_env, capture_output=True, text=True, check=False
    )
    assert bookings.returncode == 0, bookings.stderr
    assert re.search(r"abaqus\.abaqus\s+4\s", bookings.stdout), bookings.stdout  # the job that fits

    again = devstack("up", env=demo_env)
    assert again.returncode == 0, again.stderr
    for reused in (r"password (\S+)\)", r"Slurm cluster (\w+)", r"--server (\S+)"):
        assert printed(again.stdout, reused) == printed(first.stdout, reused)
    assert slurm("squeue", "-h", "-j", fits, "-o", "%T").strip() == "RUNNING"

    api_only = devstack("up", "--api-only", env=demo_env)  # the same state, person included
    assert api_only.returncode == 0, api_only.stderr
    assert "lm-cli is logged in as the demo person 'demo'" in api_only.stdout
    shown = subprocess.run(
        [*lm_cli, "show-token", "--decode"], env=person_env, capture_output=True, text=True
    )
    assert json.loads(shown.stdout)["sub"] == "demo"

    down = devstack("down", env=demo_env)
    assert down.returncode == 0, down.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{api}/lm/health", timeout=5)
    wait_for(lambda: not processes_under(state), 15, "every demo process to end")
