"""`lm-cli features usage`: a feature's history summarized, or as the API's JSON."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CliRunner, report_usage, set_up_pool
from tests.live_api import LiveApi


def test_usage_summarizes_peak_full_time_refusals_and_demand(live_api: LiveApi, lm_cli: CliRunner):
    set_up_pool(lm_cli)
    report_usage(live_api, total=10, used=10)

    shown = lm_cli("features", "usage", "--id", "1", "--since", "1h")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("abaqus.abaqus (feature 1) since ")
    assert "  peak use:        10 of 10" in lines
    assert "  refusals:        0 (0 licenses)" in lines
    assert "  unmet demand:    not reported" in lines

    as_json = lm_cli("features", "usage", "--id", "1", "--since", "2w", "--pool", "--json").json()
    assert as_json["step"] == 3600
    assert as_json["summary"]["peak_used"] == 10
    assert as_json["feature_ids"] == [1]


def test_usage_of_a_period_without_reports_says_so(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    shown = lm_cli("features", "usage", "--id", "1")
    assert shown.stdout.startswith("abaqus.abaqus: no usage reported since ")


@pytest.mark.parametrize("since", ["10s", "soon", "-1d"])
def test_a_bad_since_is_a_usage_error(lm_cli: CliRunner, since: str):
    result = lm_cli("features", "usage", "--id", "1", "--since", since)
    assert result.returncode == 2
    assert "--since" in result.stderr
