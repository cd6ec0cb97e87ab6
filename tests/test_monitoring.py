"""The shipped Prometheus rules and Grafana dashboard (monitoring/): valid, and about metrics
that GET /lm/metrics exports (tests/backend/test_metrics.py checks METRIC_NAMES on a scrape)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.metrics import METRIC_NAMES

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
RULES = MONITORING / "prometheus-rules.yml"
DASHBOARD = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
# Prometheus' own metric, not ours: whether the scrape itself works.
PROMETHEUS_METRICS = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    # Debian's prometheus package, installed by scripts/test (ensure_debs).
    executable = shutil.which("promtool")
    assert executable, "promtool missing: apt-get install prometheus (scripts/test does)"
    return subprocess.run(
        [executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def metric_names(expression: str) -> set[str]:
    """The lm_* metrics a PromQL expression reads, histogram series by their family name."""
    names = set()
    for name in re.findall(r"\blm_[a-z_]+", expression):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in METRIC_NAMES:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def dashboard_queries() -> list[str]:
    queries = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    variables = DASHBOARD["templating"]["list"]
    return queries + [v["query"] for v in variables if v["type"] == "query"]


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_on_the_series_that_should_fire_them() -> None:
    tested = promtool("test", "rules", "prometheus-rules-test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_rule_reads_exported_metrics() -> None:
    for expression in rule_expressions():
        names = metric_names(expression)
        assert names <= set(METRIC_NAMES), expression
        assert names or re.search(r"\bup\b", expression), expression


def test_the_dashboard_has_grafanas_structure() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    assert isinstance(DASHBOARD["schemaVersion"], int)
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in DASHBOARD["panels"]:
        assert panel["type"] in {"timeseries", "stat", "bargauge", "table"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
    names = {variable["name"] for variable in DASHBOARD["templating"]["list"]}
    for query in dashboard_queries():
        used = set(re.findall(r"\$([a-z_]+)", query))
        assert used <= names, query


@pytest.mark.parametrize("query", dashboard_queries())
def test_every_dashboard_query_names_an_exported_metric(query: str) -> None:
    names = metric_names(query)
    assert names, f"no License Manager metric in {query}"
    assert names <= set(METRIC_NAMES) | PROMETHEUS_METRICS, query


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query as a recording rule (template variables as regexes)."""
    queries = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": query}
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
