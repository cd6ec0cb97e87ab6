"""`python -m devstack up|down|status`: the local License Manager that README's Quick start runs.

`up` brings the whole loop up on this machine (PostgreSQL, the API, simulated license servers,
a real single-node Slurm whose prolog/epilog run the agent, and the agent reconciling every few
seconds), with a demo license pool. `up --api-only` starts only PostgreSQL and the API.
Everything lives under .lm-dev/ (LM_DEV_STATE); a second `up` reuses it; `down` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cli.api import CliError
from cli.session import TokenFile
from devstack.api import ApiError
from devstack.login import log_in
from devstack.postgres import PostgresError
from devstack.processes import console_script
from devstack.simulator import SimulatorRefused
from devstack.slurm import SlurmError
from devstack.stack import Pool, Stack, StackError

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("LM_DEV_STATE", PROJECT_DIR / ".lm-dev")).absolute()
API_PORT = int(os.environ.get("LM_API_PORT", "8000"))
PG_PORT = int(os.environ.get("LM_PG_PORT", "5433"))
# Short for a demo; a cluster's cron runs the agent every stat_interval (60 s is typical).
RECONCILE_INTERVAL = 5
DEMO_POOL_FILE = "demo-pool.json"
DEMO_TOTAL, DESKTOP_CHECKOUT = 10, 3
ERRORS = (ApiError, CliError, PostgresError, SimulatorRefused, SlurmError, StackError, OSError)


def state_root() -> Path:
    """.lm-dev/ unless the `postgres` user cannot reach it (a checkout under /root, say)."""
    if os.geteuid() != 0:
        return STATE_DIR
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    reachable = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(STATE_DIR)], check=False
    )
    if reachable.returncode == 0:
        return STATE_DIR
    return Path("/var/lib/license-manager-dev") / PROJECT_DIR.name


def demo_stack() -> Stack:
    return Stack(
        root=state_root(),
        api_port=API_PORT,
        postgres_port=PG_PORT,
        reconcile_interval=RECONCILE_INTERVAL,
        fast_database=False,
        database_url=os.environ.get("LM_DATABASE_URL", ""),
    )


def demo_pool(stack: Stack) -> Pool:
    """abaqus.abaqus on a simulated FlexLM server, 3 of its 10 tokens used by a desktop."""
    saved = stack.root / DEMO_POOL_FILE
    if saved.exists():
        fields = json.loads(saved.read_text())
        pool = Pool(**{**fields, "servers": tuple(fields["servers"])})
        if stack.admin and stack.admin.request("GET", f"/lm/features/{pool.feature_id}").ok:
            return pool  # a second `up`: the pool is still there
    pool = stack.add_pool("abaqus", "abaqus", DEMO_TOTAL, grace_time=120)
    stack.simulator.checkout(pool.servers[0], pool.feature, "desktop07", "ws12", DESKTOP_CHECKOUT)
    saved.write_text(json.dumps(pool.__dict__ | {"servers": list(pool.servers)}))
    return pool


# A job as a solver without a free token behaves: a FlexNet error and exit 1, on its first run.
LICENSE_FAILURE_JOB = """#!/bin/sh
# Dies for lack of a license on its first run; the epilog requeues it; the second run succeeds.
if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    echo "FlexNet Licensing error:-4,132. Licensed number of users already reached." >&2
    exit 1
fi
echo "solver finished (run $((SLURM_RESTART_COUNT + 1)))"
"""


def license_failure_job(stack: Stack) -> Path:
    script = stack.root / "license-failure-job.sh"
    script.write_text(LICENSE_FAILURE_JOB)
    script.chmod(0o755)
    return script


def log_in_demo_person(stack: Stack) -> tuple[str, str]:
    """lm-cli's login of the demo person (its token file), as `lm-cli login` would store it.

    Returns (what to tell the user, a token for Swagger UI). A login of this user to another
    API is left alone.
    """
    person = stack.demo_person
    browser_login = f"name {person['name']}, password {person['password']}"
    store = TokenFile()
    try:
        current = store.load()
    except CliError:
        current = None  # corrupt: replaced by the demo's login
    if current is not None and current.api_url != stack.api.url:
        assert stack.admin is not None  # set by start()
        note = (
            f"You are logged in to another API ({current.api_url}): to use this one, run\n"
            f"  lm-cli logout; lm-cli login --url {stack.api.url}    ({browser_login})"
        )
        return note, stack.admin.fetch_token()
    session = log_in(stack.api.url, person["name"], person["password"], store)
    note = (
        f"lm-cli is logged in as the demo person {person['name']!r} (tokens in {store.path});\n"
        f"people log in with `lm-cli login` in a browser ({browser_login})."
    )
    return note, session.access_token


def up_whole_stack() -> None:
    stack = demo_stack()
    print(f"starting the License Manager demo in {stack.root} (first run: ~1 min) ...")
    stack.start()
    pool = demo_pool(stack)
    failing_job = license_failure_job(stack)
    login, token = log_in_demo_person(stack)
    output = f"--output={stack.slurm.job_dir}/slurm-%j.out"
    simulator = f"{console_script('lm-simulator')} --state {stack.simulator.state_file}"
    print(
        f"""
The License Manager runs: API {stack.api.url}/lm/health, agent every {RECONCILE_INTERVAL} s,
Slurm cluster {stack.slurm.name}, license pool {pool.slurm_license} ({DEMO_TOTAL} tokens, a
desktop holds {DESKTOP_CHECKOUT}: the agent reserves them in Slurm).

{login}
Swagger UI: {stack.api.url}/lm/docs  (Authorize -> paste this token, valid 1 h)
{token}

Try it (as root, in this shell; job output goes to {stack.slurm.job_dir}):
  export SLURM_CONF={stack.slurm.conf_file}
  sbatch -L {pool.slurm_license}:4 {output} --wrap 'sleep 60'    # booked by the prolog, runs
  sbatch -L {pool.slurm_license}:6 {output} --wrap 'sleep 60'    # waits: only 10 - 3 - 4 free
  squeue; scontrol show lic -o; scontrol show res        # jobs, licenses, the reservation
  {simulator} checkout --server {pool.servers[0]} {pool.feature} --user bob --host ws3 --count 2
  {simulator} checkin --server {pool.servers[0]} --user desktop07

Watch bookings and the reservation change:
  export LM_API_URL={stack.api.url}
  watch -n 2 '{console_script("lm-cli")} bookings list; scontrol show lic -o'
  tail -f {stack.agent_log}

A job that dies for lack of a license on its first run: the epilog requeues it, it completes:
  sbatch -L {pool.slurm_license}:1 {output} {failing_job}
  squeue -t all -o '%i %T %r'                  # FAILED -> PENDING (BeginTime) -> COMPLETED
  grep 'requeued (' {stack.agent_log}
  {console_script("lm-cli")} license-failures list

Stop everything: scripts/down   (state stays in {stack.root} for the next scripts/up)"""
    )


def up_api_only() -> None:
    """PostgreSQL, migrations, the API, an admin client and the demo person: no Slurm."""
    stack = demo_stack()
    stack.start(api_only=True)
    login, token = log_in_demo_person(stack)
    print(
        f"""
The License Manager API runs: {stack.api.url}/lm/health
{login}
Swagger UI: {stack.api.url}/lm/docs  (Authorize -> paste this token, valid 1 h)
{token}

A new token: LM_API_URL={stack.api.url} {console_script("lm-cli")} show-token
Stop: scripts/down"""
    )


def down() -> None:
    """Stop what `up` started, whichever mode it ran in."""
    demo_stack().stop()
    print("stopped everything scripts/up started; its state stays for the next scripts/up")


def status() -> None:
    stack = demo_stack()
    print(f"state:      {stack.root}")
    print(f"API:        {'up' if stack.api.healthy() else 'down'} ({stack.api.url})")
    print(f"PostgreSQL: {'up' if stack.postgres.is_running() else 'down'}")
    print(f"Slurm:      {'up' if stack.slurm.running() else 'down'}")
    print(f"agent loop: {'up' if stack.reconcile_loop_running() else 'down'}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--api-only", action="store_true", help="up: only PostgreSQL and the API, no Slurm"
    )
    arguments = parser.parse_args()
    try:
        if arguments.command == "up":
            up_api_only() if arguments.api_only else up_whole_stack()
        else:
            {"down": down, "status": status}[arguments.command]()
    except ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
