"""`lm-agent slurm-licenses` and the slurm_license_config role writing Licenses= from the totals
the API holds (opt-in), against the real API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.conftest import LM_AGENT, add_configuration, run_agent, seed_pool
from tests.deploy.test_deploy import SITE_SLURM_CONF, apply_role
from tests.live_api import LiveApi


@pytest.fixture
def pools(live_api: LiveApi, cluster_client: dict[str, str]) -> None:
    """abaqus.abaqus reported with 7 tokens; ansys.cfd (rlm) configured but never reported."""
    seed_pool(live_api, cluster_client, {"abaqus.abaqus": (7, 2)})
    add_configuration(
        live_api.admin, cluster_client["client_id"], ["ansys.cfd"], server_type="rlm", name="cfd"
    )


def test_slurm_licenses_prints_the_reported_totals_by_slurm_name(
    pools: None, agent_yaml: Callable[..., Path]
) -> None:
    result = run_agent("--config", str(agent_yaml()), "slurm-licenses", env={})

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "licenses": {"abaqus.abaqus@flexlm": 7},
        "not_read": {"ansys.cfd@rlm": "never reported"},
    }


def test_the_role_writes_licenses_from_the_api_totals_when_asked(
    pools: None, agent_yaml: Callable[..., Path], tmp_path: Path
) -> None:
    slurm_conf = tmp_path / "slurm.conf"
    slurm_conf.write_text(SITE_SLURM_CONF)
    variables = {
        "slurm_license_config_slurm_conf": str(slurm_conf),
        "slurm_license_config_licenses": [
            {"product": "abaqus", "feature": "abaqus", "type": "flexlm", "count": 100},
            {"product": "ansys", "feature": "cfd", "type": "rlm", "count": 20},
        ],
        "slurm_license_config_scontrol": "/nonexistent/scontrol",  # no slurmctld: no reconfigure
        "slurm_license_config_lm_agent": str(LM_AGENT),
        "slurm_license_config_agent_config": str(agent_yaml()),
    }

    by_hand = apply_role(tmp_path, "slurm_license_config", variables)
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert "Licenses=abaqus.abaqus@flexlm:100,ansys.cfd@rlm:20" in slurm_conf.read_text()

    variables["slurm_license_config_totals_from_api"] = True
    from_api = apply_role(tmp_path, "slurm_license_config", variables)
    assert from_api.returncode == 0, from_api.stdout + from_api.stderr
    # abaqus as its server last reported it; ansys.cfd has no report: the listed count stays.
    assert "Licenses=abaqus.abaqus@flexlm:7,ansys.cfd@rlm:20" in slurm_conf.read_text()

    again = apply_role(tmp_path, "slurm_license_config", variables)
    assert "changed=0" in again.stdout, again.stdout + again.stderr
