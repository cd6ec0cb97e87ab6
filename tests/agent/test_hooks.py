"""`lm-agent prolog` / `epilog` run as slurmctld runs them: a fresh process whose environment
holds only the job's SLURM_* variables (no PATH, HOME or USER), against the real API."""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devstack.processes import free_port, wait_for
from tests.agent.conftest import WriteConfig, hook, job_env, jobs_in_api, run_agent
from tests.live_api import LiveApi

TOKEN_REQUEST = "POST /lm/oauth/token 200"
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"
# Runs `lm-agent prolog` and, at exit, writes every module the process loaded to argv[1].
PROLOG_LISTING_MODULES = """
import atexit, sys
atexit.register(lambda: open(sys.argv[1], "w").write("\\n".join(sorted(sys.modules))))
from agent.main import main
main(["prolog"])
"""


@pytest.mark.parametrize("licenses", [None, "(null)", "", "matlab:2"])
@pytest.mark.parametrize("command", ["prolog", "epilog"])
def test_a_job_without_tracked_licenses_passes_without_config_or_api(
    tmp_path: Path, command: str, licenses: str | None
) -> None:
    env = job_env(tmp_path / "no-such-agent.yaml", "7", licenses)

    result = run_agent(command, env=env, cwd=tmp_path)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_prolog_books_the_tracked_licenses_and_the_job_starts(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    licenses = "abaqus.abaqus@flexlm:3,ansys.cfd@flexlm,abaqus.abaqus@flexlm:1,matlab.base@rlm"
    env = job_env(agent_yaml(), "101", licenses)

    code, log = hook("prolog", env, tmp_path)

    assert code == 0
    job = jobs_in_api(pool)["101"]
    assert (job["cluster_client_id"], job["username"], job["lead_host"]) == (
        "cluster-a",
        "alice",
        "node03",
    )
    assert {b["product_feature"]: b["quantity"] for b in job["bookings"]} == {
        "abaqus.abaqus": 4,
        "ansys.cfd": 1,
    }
    assert "job 101 granted: abaqus.abaqus=4 ansys.cfd=1 matlab.base=1" in log
    assert "not tracked: matlab.base" in log


def test_prolog_refuses_a_job_when_the_pool_lacks_licenses(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    env = job_env(agent_yaml(), "102", "abaqus.abaqus@flexlm:9,ansys.cfd@flexlm:1")

    code, log = hook("prolog", env, tmp_path)

    assert code == 1
    assert "102" not in jobs_in_api(pool)
    refusal = next(line for line in log.splitlines() if "job 102 refused" in line)
    assert "abaqus.abaqus: 9 requested, 8 available" in refusal
    assert "Slurm requeues it" in refusal


def test_prolog_refuses_and_logs_a_job_whose_pool_was_not_reported_recently(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    # The agent last reported 10 minutes ago (it states no interval: 60 s, fresh for 180 s).
    with psycopg.connect(pool.database_url) as connection:
        connection.execute("UPDATE features SET reported_at = now() - interval '10 minutes'")
    env = job_env(agent_yaml(), "104", "abaqus.abaqus@flexlm:1")

    code, log = hook("prolog", env, tmp_path)

    assert code == 1
    assert "104" not in jobs_in_api(pool)
    refusal = next(line for line in log.splitlines() if "job 104 refused" in line)
    # The age is measured when the prolog runs: a loaded machine may add a second or two.
    assert re.search(r"abaqus\.abaqus: 1 requested, stale: last report 6\d\d s ago", refusal)


@pytest.mark.parametrize(("policy", "exit_code"), [("requeue", 1), ("allow", 0)])
def test_unreachable_api_follows_the_configured_policy(
    agent_yaml: WriteConfig, tmp_path: Path, policy: str, exit_code: int
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    config = agent_yaml(api_url=nowhere, prolog_api_unreachable=policy)

    code, log = hook("prolog", job_env(config, "103", "abaqus.abaqus@flexlm:1"), tmp_path)

    assert code == exit_code
    decision = "requeued" if policy == "requeue" else "allowed"
    assert f"job 103 {decision} unchecked: cannot reach {nowhere}" in log
    assert "connection refused" in log


def test_a_rejected_client_secret_follows_the_policy_and_says_why(
    live_api: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    config = agent_yaml(client_secret="not-the-secret")

    code, log = hook("prolog", job_env(config, "104", "abaqus.abaqus@flexlm:1"), tmp_path)

    assert code == 1
    assert "job 104 requeued unchecked: token endpoint" in log
    assert "refused client 'cluster-a'" in log


@pytest.mark.parametrize(("policy", "exit_code"), [("requeue", 1), ("allow", 0)])
def test_malformed_licenses_are_logged_and_follow_the_policy(
    live_api: LiveApi, agent_yaml: WriteConfig, tmp_path: Path, policy: str, exit_code: int
) -> None:
    env = job_env(agent_yaml(prolog_api_unreachable=policy), "105", "abaqus.abaqus@flexlm:two")

    code, log = hook("prolog", env, tmp_path)

    assert code == exit_code
    assert "SLURM_JOB_LICENSES='abaqus.abaqus@flexlm:two'" in log
    assert "must be a whole number" in log
    assert not any("/lm/jobs" in line for line in live_api.requests_seen())


def test_the_token_is_cached_per_user_and_reused(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    config = agent_yaml()

    first, _ = hook("prolog", job_env(config, "106", "abaqus.abaqus@flexlm:1"), tmp_path)
    second, _ = hook("prolog", job_env(config, "107", "ansys.cfd@flexlm:1"), tmp_path)

    assert (first, second) == (0, 0)
    assert pool.requests_seen().count(TOKEN_REQUEST) == 1
    cache = tmp_path / "cache" / f"token-{os.geteuid()}.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_a_token_the_api_rejects_is_replaced_once(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    config = agent_yaml()
    assert hook("prolog", job_env(config, "108", "abaqus.abaqus@flexlm:1"), tmp_path)[0] == 0
    cache = tmp_path / "cache" / f"token-{os.geteuid()}.json"
    entry = json.loads(cache.read_text())
    cache.write_text(json.dumps({**entry, "access_token": "revoked-token"}))
    # gunicorn logs a request after answering it: let the first prolog's line land first.
    wait_for(lambda: "POST /lm/jobs 201" in pool.requests_seen(), 10, "the access log line")
    pool.forget_requests()

    code, log = hook("prolog", job_env(config, "109", "abaqus.abaqus@flexlm:1"), tmp_path)

    assert code == 0
    assert "job 109 granted" in log
    # Two gunicorn workers may log in either order; a 201 needs the new token anyway.
    expected = ["POST /lm/jobs 201", "POST /lm/jobs 401", TOKEN_REQUEST]
    wait_for(lambda: sorted(pool.requests_seen()) == expected, 10, f"requests {expected}")
    # The replacement is valid (a token issued in the same second may equal the first one).
    assert json.loads(cache.read_text())["access_token"] != "revoked-token"


def test_epilog_releases_the_job_and_its_bookings(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    env = job_env(agent_yaml(), "110", "abaqus.abaqus@flexlm:5")
    assert hook("prolog", env, tmp_path)[0] == 0

    code, log = hook("epilog", {**env, "SLURM_SCRIPT_CONTEXT": "epilog_slurmctld"}, tmp_path)

    assert code == 0
    assert "110" not in jobs_in_api(pool)
    assert "job 110 released: its bookings are deleted" in log


def test_epilog_of_a_job_the_api_does_not_know_is_fine(
    live_api: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    code, log = hook("epilog", job_env(agent_yaml(), "111", "abaqus.abaqus@flexlm:1"), tmp_path)

    assert code == 0
    assert "job 111 released: the API held no record of it" in log


def test_epilog_never_fails_when_the_api_is_down(agent_yaml: WriteConfig, tmp_path: Path) -> None:
    config = agent_yaml(api_url=f"http://127.0.0.1:{free_port()}")

    code, log = hook("epilog", job_env(config, "112", "abaqus.abaqus@flexlm:1"), tmp_path)

    assert code == 0
    assert "job 112 not released: cannot reach" in log
    assert "reconcile will remove it" in log


def test_a_licensed_prolog_loads_none_of_the_modules_the_hook_contract_forbids(
    pool: LiveApi, agent_yaml: WriteConfig, tmp_path: Path
) -> None:
    """The import-linter contract sees imports in the code; this sees what a real run loads."""
    contracts = configparser.ConfigParser()
    contracts.read(SETUP_CFG)
    forbidden = contracts["importlinter:contract:hooks"]["forbidden_modules"].split()
    listing = tmp_path / "modules"
    env = job_env(agent_yaml(), "401", "abaqus.abaqus@flexlm:1")

    result = subprocess.run(
        [sys.executable, "-c", PROLOG_LISTING_MODULES, str(listing)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "401" in jobs_in_api(pool), "the prolog booked the job"
    loaded = listing.read_text().split()
    assert {"agent.hooks", "agent.api", "yaml"} <= set(loaded), "the listing is of a real run"
    assert [
        module
        for module in loaded
        if any(module == name or module.startswith(f"{name}.") for name in forbidden)
    ] == []
