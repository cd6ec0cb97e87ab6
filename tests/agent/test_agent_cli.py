"""`lm-agent` as admins run it: `parse` on saved tool outputs, `reconcile --loop`, usage errors."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from devstack.processes import free_port, wait_for
from tests.agent.conftest import LM_AGENT, run_agent, write_agent_yaml

SAMPLES = Path(__file__).parent / "data" / "real"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
SERVER_DOWN = {
    "lmstat_server_down.txt": "flexlm",
    "lstc_qrun_server_down.txt": "lsdyna",
    "lmxendutil_server_down.txt": "lmx",
    "dslicsrv_server_down.txt": "dsls",
}


def as_printed(expected: dict) -> dict:
    """expected.json lists uses as [user, host, count]; `parse` prints them as objects."""
    return {
        name: {
            "total": usage["total"],
            "used": usage["used"],
            "uses": [
                {"username": user, "lead_host": host, "count": count}
                for user, host, count in usage["uses"]
            ],
            "expires": usage.get("expires"),
        }
        for name, usage in expected.items()
    }


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_parse_prints_the_features_of_a_real_sample(sample: str) -> None:
    result = run_agent("parse", "--type", EXPECTED[sample]["type"], str(SAMPLES / sample), env={})

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {"features": as_printed(EXPECTED[sample]["features"])}


def test_parse_reads_standard_input_without_a_file() -> None:
    text = (SAMPLES / "lmstat_f_idle.txt").read_text()

    result = run_agent("parse", "--type", "flexlm", env={}, stdin=text)

    assert json.loads(result.stdout)["features"]["TESTFEATURE"]["total"] == 1000


@pytest.mark.parametrize(("sample", "server_type"), sorted(SERVER_DOWN.items()))
def test_output_of_an_unreadable_server_exits_3_with_one_line(
    sample: str, server_type: str
) -> None:
    result = run_agent("parse", "--type", server_type, str(SAMPLES / sample), env={})

    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("lm-agent parse: server unreadable: ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["parse", "--type", "sge", "x"], "argument --type: invalid choice: 'sge'"),
        (["parse", "--type", "flexlm", "/nonexistent"], "can't open '/nonexistent'"),
        (
            ["parse", str(SAMPLES / "lmstat_f_idle.txt")],
            "the following arguments are required: --type",
        ),
        (["reconcile", "--forever"], "unrecognized arguments: --forever"),
        (["launch"], "invalid choice: 'launch'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(arguments: list[str], message: str) -> None:
    result = run_agent(*arguments, env={})

    assert result.returncode == 2
    assert message in result.stderr


def test_reconcile_loop_repeats_every_stat_interval_survives_failures_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "agent.log"
    config = write_agent_yaml(
        tmp_path / "agent.yaml",
        {
            "api_url": f"http://127.0.0.1:{free_port()}",
            "client_id": "cluster-a",
            "client_secret": "secret",
            "log_file": str(log_file),
            "token_cache_dir": str(tmp_path / "cache"),
            "lock_file": str(tmp_path / "reconcile.lock"),
            "state_file": str(tmp_path / "reconcile-state.json"),
            "stat_interval": 1,
        },
    )
    loop = subprocess.Popen(
        [LM_AGENT, "--config", str(config), "reconcile", "--loop"],
        env={},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: log_file.exists() and log_file.read_text().count("connection refused") >= 2,
            timeout=30,
            what="two failed reconcile cycles",
        )
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=10) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
    assert log_file.read_text().splitlines()[-1].endswith("stopped")


def test_parse_names_unreadable_features_and_inconsistent_figures_on_stderr() -> None:
    classes = SAMPLES.parent / "classes"
    vendors = run_agent(
        "parse", "--type", "flexlm", str(classes / "lmstat_several_vendors.txt"), env={}
    )
    assert vendors.returncode == 0
    assert set(json.loads(vendors.stdout)) == {"features"}
    assert vendors.stderr.splitlines() == [
        "lm-agent parse: MATLAB unreadable: Error: 50 licenses, unsupported by licensed server",
        "lm-agent parse: Simulink unreadable: Error: 20 licenses, unsupported by licensed server",
    ]

    inconsistent = run_agent(
        "parse", "--type", "flexlm", str(classes / "lmstat_inconsistent.txt"), env={}
    )
    assert json.loads(inconsistent.stdout)["features"]["stale"]["used"] == 5
    assert inconsistent.stderr.startswith("lm-agent parse: inconsistent figures: overbooked: ")


def test_parse_reads_utf16_and_the_outputs_the_agent_kept(tmp_path: Path) -> None:
    sample = (SAMPLES / "rlmstat_a_p.txt").read_text()
    utf16 = tmp_path / "rlmstat-utf16.txt"
    utf16.write_bytes(sample.replace("\n", "\r\n").encode("utf-16"))
    kept = tmp_path / "kept.txt"
    kept.write_bytes(b"# command: /opt/rlm/rlmutil rlmstat -c 5053@lic -a -p\n" + sample.encode())

    for saved in (utf16, kept):
        result = run_agent("parse", "--type", "rlm", str(saved), env={})
        assert json.loads(result.stdout) == {
            "features": as_printed(EXPECTED["rlmstat_a_p.txt"]["features"])
        }
