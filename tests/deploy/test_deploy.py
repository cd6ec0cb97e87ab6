"""The Ansible deployment: argument checks, the example inventory, and the molecule scenario.

`molecule test` (molecule/default) deploys the API, the agent and the slurm.conf lines with
playbooks/site.yml into a Debian 12 container with systemd and a running slurmctld, runs it a
second time (nothing may change) and verifies the result by using it (molecule/default/verify.yml).
molecule/prepare-host.sh installs podman, runc and debootstrap when missing and builds the
container image once (several minutes the first time; cached as a podman image afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import SCRIPTS_DIR

ROOT = Path(__file__).resolve().parents[2]
BIN = SCRIPTS_DIR  # ansible and molecule come with the `deploy` extra


def ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "CONTAINERS_CONF": str(ROOT / "molecule" / "containers.conf"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def run(argv: list[str], timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def apply_role(
    tmp_path: Path, role: str, variables: dict[str, object]
) -> subprocess.CompletedProcess:
    """Run `role` against this machine with `variables`; the argument checks come first."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"- hosts: localhost\n  connection: local\n  gather_facts: true\n  roles: [{role}]\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    playbook_cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    return run([*playbook_cmd, "-e", f"@{extra}"])


@pytest.mark.parametrize(
    ("role", "variables", "expected"),
    [
        (
            "license_manager_agent",
            {"license_manager_agent_prolog_api_unreachable": "maybe"},
            "value of license_manager_agent_prolog_api_unreachable must be one of: requeue, allow",
        ),
        (
            "license_manager_agent",
            {"license_manager_agent_stat_interval": "often"},
            "argument 'license_manager_agent_stat_interval' is of type str and we were unable",
        ),
        (
            "license_manager_agent",
            {
                "license_manager_agent_stat_interval": 90,
                "license_manager_agent_api_url": "http://x",
            },
            "must be a multiple of 60 that divides 3600",
        ),
        (
            "slurm_license_config",
            {
                "slurm_license_config_licenses": [
                    {"product": "abaqus", "feature": "abaqus", "type": "flexml", "count": 5}
                ]
            },
            "value of type must be one of: flexlm, rlm, lsdyna, lmx, olicense, dsls, got: flexml",
        ),
        (
            "slurm_license_config",
            {"slurm_license_config_licenses": [{"product": "ab", "type": "flexlm", "count": 5}]},
            "missing required arguments: feature found in slurm_license_config_licenses",
        ),
        (
            "license_manager_backend",
            {"license_manager_backend_public_url": "lm.example.org:8000"},
            "must be an http:// or https:// URL",
        ),
        (
            "license_manager_backend",
            {"license_manager_backend_database_sslmode": "verify"},
            "value of license_manager_backend_database_sslmode must be one of: , disable, allow,",
        ),
    ],
)
def test_bad_role_variables_are_refused_before_any_change(
    tmp_path: Path, role: str, variables: dict[str, object], expected: str
) -> None:
    result = apply_role(tmp_path, role, variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output, output
    assert "changed=0" in output, output  # refused by the first checks: nothing was touched


SITE_SLURM_CONF = "ClusterName=c1\nSlurmctldHost=ctl\nPartitionName=debug Nodes=ALL Default=YES\n"
LICENSES = [
    {"product": "abaqus", "feature": "abaqus", "type": "flexlm", "count": 100},
    {"product": "ansys", "feature": "cfd", "type": "rlm", "count": 20},
]


def test_slurm_conf_block_is_written_once_and_kept_idempotent(tmp_path: Path) -> None:
    slurm_conf = tmp_path / "slurm.conf"
    slurm_conf.write_text(SITE_SLURM_CONF)
    variables = {
        "slurm_license_config_slurm_conf": str(slurm_conf),
        "slurm_license_config_licenses": LICENSES,
        "slurm_license_config_other_licenses": ["matlab:5"],
        "license_manager_agent_license_name_template": "{product}_{feature}@{type}",
        "slurm_license_config_scontrol": "/nonexistent/scontrol",  # no slurmctld: no reconfigure
    }
    first = apply_role(tmp_path, "slurm_license_config", variables)
    assert first.returncode == 0, first.stdout + first.stderr
    text = slurm_conf.read_text()
    assert text.startswith(SITE_SLURM_CONF)  # the site's lines stay as they were
    block = text[len(SITE_SLURM_CONF) :].splitlines()
    assert block[1:-1] == [
        "PrologSlurmctld=/usr/local/bin/lm-agent-prolog",
        "EpilogSlurmctld=/usr/local/bin/lm-agent-epilog",
        "Licenses=abaqus_abaqus@flexlm:100,ansys_cfd@rlm:20,matlab:5",
    ]
    assert block[0].startswith("# BEGIN License Manager for Slurm")
    assert block[-1].startswith("# END License Manager for Slurm")
    assert "Reconfigure slurmctld" not in first.stdout  # skipped: slurmctld did not answer

    again = apply_role(tmp_path, "slurm_license_config", variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout
    assert slurm_conf.read_text() == text

    variables["slurm_license_config_licenses"] = LICENSES[:1]
    smaller = apply_role(tmp_path, "slurm_license_config", variables)
    assert smaller.returncode == 0, smaller.stdout + smaller.stderr
    assert "Licenses=abaqus_abaqus@flexlm:100,matlab:5" in slurm_conf.read_text().splitlines()


def test_slurm_conf_keys_set_outside_the_block_stop_the_role(tmp_path: Path) -> None:
    slurm_conf = tmp_path / "slurm.conf"
    original = SITE_SLURM_CONF + "licenses=matlab:5\n"
    slurm_conf.write_text(original)
    result = apply_role(
        tmp_path,
        "slurm_license_config",
        {
            "slurm_license_config_slurm_conf": str(slurm_conf),
            "slurm_license_config_licenses": LICENSES,
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "already sets licenses=matlab:5 outside the block" in output, output
    assert slurm_conf.read_text() == original


def test_example_inventory_parses_and_site_playbook_checks(tmp_path: Path) -> None:
    # Admins copy it to `inventory` (YAML; a file without extension is read as YAML).
    inventory = tmp_path / "inventory"
    shutil.copy(ROOT / "inventory.example", inventory)
    listed = run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"])
    assert listed.returncode == 0, listed.stderr
    groups = json.loads(listed.stdout)
    assert groups["license_manager_backend"]["hosts"] == ["licenses.example.org"]
    assert groups["slurm_controller"]["hosts"] == ["slurmctld.cluster-a.example.org"]
    check = ["--syntax-check", "playbooks/site.yml"]
    syntax = run([str(BIN / "ansible-playbook"), "-i", str(inventory), *check])
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_roles_playbooks_and_scenario_pass_ansible_lint() -> None:
    result = run([str(BIN / "ansible-lint"), "--nocolor", "roles", "playbooks", "molecule"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", ["default", "site"])
def test_molecule_scenario_deploys_idempotently_and_verifies(scenario: str) -> None:
    prepared = run(["bash", str(ROOT / "molecule" / "prepare-host.sh")], timeout=900)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    command = [sys.executable, "-m", "molecule", "test", "-s", scenario]
    result = run(command, timeout=1800)
    output = result.stdout + result.stderr
    if result.returncode != 0 and "UNREACHABLE!" in output:
        # `podman exec` itself failed (seen once under heavy load: exit 255 before any module
        # ran), not a role or a check: one more complete run decides.
        print(output[-5000:], file=sys.stderr)
        result = run(command, timeout=1800)
        output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    # The scenario really ran its steps: a second converge changed nothing, verify passed.
    assert "idempotence: Executed: Successful" in output, output[-20000:]
    assert "verify: Executed: Successful" in output, output[-20000:]
