"""`lm-agent parse` as admins use it on saved tool outputs, and the command line's usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agent.conftest import run_agent

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
