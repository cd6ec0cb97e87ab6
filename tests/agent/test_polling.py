"""Polling license servers through lm-simulator's fake tools: mirrors, faults, time-outs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent.polling import PollResult, poll_all, poll_configuration
from devstack.simulator import Simulator

TIMEOUT = 2.0
CLASSES = Path(__file__).parent / "data" / "classes"


def configuration(
    server_type: str, *addresses: str, name: str = "pool", config_id: int = 1
) -> dict[str, Any]:
    """A configuration as GET /lm/configurations/by_client_id returns it (servers in order)."""
    servers = []
    for address in addresses:
        host, port = address.rsplit(":", 1)
        servers.append({"id": len(servers) + 1, "host": host, "port": int(port)})
    return {
        "id": config_id,
        "name": name,
        "type": server_type,
        "grace_time": 60,
        "license_servers": servers,
        "features": [],
    }


def poll(simulator: Simulator, config: dict[str, Any]) -> PollResult:
    return poll_configuration(config, simulator.tool, TIMEOUT)


def mirrors(simulator: Simulator, server_type: str, feature: str, *faults: str) -> list[str]:
    """Servers lic1, lic2, ... offering `feature` (10 tokens), the n-th with the n-th fault."""
    addresses = []
    for number, fault in enumerate(faults, start=1):
        address = f"lic{number}:27000"
        simulator.add_server(server_type, address, {feature: 10})
        simulator.fault(address, fault)
        addresses.append(address)
    return addresses


@pytest.mark.parametrize(
    ("server_type", "feature"),
    [
        ("flexlm", "abaqus"),
        ("rlm", "converge_super"),
        ("lsdyna", "MPPDYNA"),
        ("lmx", "HyperWorks"),
        ("olicense", "ftire_adams"),
        ("dsls", "SRU"),
    ],
)
def test_every_server_type_is_read_with_its_checkouts(
    simulator: Simulator, server_type: str, feature: str
) -> None:
    simulator.add_server(server_type, "lic1:27000", {feature: 20})
    simulator.checkout("lic1:27000", feature, "alice", "n01", 1)
    simulator.checkout("lic1:27000", feature, "bob", "n02", 3)

    result = poll(simulator, configuration(server_type, "lic1:27000"))

    assert result.reachable, result.reason
    assert result.server == "lic1:27000"
    usage = result.usage(feature)
    assert usage is not None
    assert (usage.total, usage.used) == (20, 4)
    assert sorted((c.username, c.lead_host, c.count) for c in usage.uses) == [
        ("alice", "n01", 1),
        ("bob", "n02", 3),
    ]


def test_feature_names_match_case_insensitively(simulator: Simulator) -> None:
    simulator.add_server("flexlm", "lic1:27000", {"Abaqus_CAE-2": 5})

    result = poll(simulator, configuration("flexlm", "lic1:27000"))

    usage = result.usage("abaqus_cae-2")
    assert usage is not None and usage.total == 5
    assert result.usage("abaqus") is None


def test_the_mirror_is_not_asked_when_the_first_server_answers(simulator: Simulator) -> None:
    addresses = mirrors(simulator, "flexlm", "abaqus", "none", "hang")

    result = poll(simulator, configuration("flexlm", *addresses))

    assert result.server == "lic1:27000"
    assert result.failures == []
    assert simulator.running_tools() == []


@pytest.mark.parametrize("fault", ["down", "garbage"])
def test_a_failing_server_falls_back_to_its_mirror(simulator: Simulator, fault: str) -> None:
    addresses = mirrors(simulator, "rlm", "cfd", fault, "none")
    simulator.checkout("lic2:27000", "cfd", "carol", "n07", 1)

    result = poll(simulator, configuration("rlm", *addresses))

    assert result.server == "lic2:27000"
    usage = result.usage("cfd")
    assert usage is not None and usage.used == 1
    assert len(result.failures) == 1
    assert result.failures[0].startswith("lic1:27000: ")


def test_a_hung_server_is_killed_at_the_timeout_and_its_mirror_used(
    simulator: Simulator,
) -> None:
    addresses = mirrors(simulator, "flexlm", "abaqus", "hang", "none")

    started = time.monotonic()
    result = poll(simulator, configuration("flexlm", *addresses))
    elapsed = time.monotonic() - started

    assert result.server == "lic2:27000"
    assert result.failures == [f"lic1:27000: {simulator.tool('flexlm')} timed out after 2 s"]
    # The hung tool sleeps for a day: returning soon after the timeout means it was killed.
    assert elapsed < TIMEOUT + 3
    assert simulator.running_tools() == [], "the hung tool's process group must be gone"


def test_all_servers_down_make_the_pool_unreachable_with_every_reason(
    simulator: Simulator,
) -> None:
    addresses = mirrors(simulator, "lmx", "HyperWorks", "down", "garbage")

    result = poll(simulator, configuration("lmx", *addresses))

    assert not result.reachable
    assert result.usage("HyperWorks") is None
    assert [failure.split(": ")[0] for failure in result.failures] == addresses
    assert all(address in result.reason for address in addresses)


def test_a_missing_tool_makes_the_pool_unreachable_not_a_crash(simulator: Simulator) -> None:
    simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})

    result = poll_configuration(
        configuration("flexlm", "lic1:27000"), lambda _type: "/nonexistent/lmutil", TIMEOUT
    )

    assert not result.reachable
    assert result.failures == [
        "lic1:27000: cannot run /nonexistent/lmutil: No such file or directory"
    ]


def test_configurations_are_polled_in_parallel_and_keep_their_order(
    simulator: Simulator,
) -> None:
    latency = 1.5
    configurations = []
    for number in range(3):
        address = f"lic{number}:27000"
        simulator.add_server("flexlm", address, {f"feature{number}": 10 + number})
        simulator.run("latency", "--server", address, str(latency))
        configurations.append(
            configuration("flexlm", address, name=f"pool{number}", config_id=number)
        )

    started = time.monotonic()
    results = poll_all(configurations, simulator.tool, timeout=10)
    elapsed = time.monotonic() - started

    assert [result.configuration["name"] for result in results] == ["pool0", "pool1", "pool2"]
    assert [result.usage(f"feature{n}").total for n, result in enumerate(results)] == [10, 11, 12]
    assert elapsed < 3 * latency, "one pool after the other would take 3 x latency"


def test_configurations_naming_the_same_servers_share_one_poll(simulator: Simulator) -> None:
    simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})
    first = configuration("flexlm", "lic1:27000", name="short-grace", config_id=1)
    second = configuration("flexlm", "LIC1:27000", name="long-grace", config_id=2)

    results = poll_all([first, second], simulator.tool, TIMEOUT)

    assert [r.configuration["name"] for r in results] == ["short-grace", "long-grace"]
    assert results[0].features is results[1].features


def saved_output_tool(tmp_path: Path, output: bytes) -> str:
    """A license-server tool that prints a saved output (a server printing what a site's does)."""
    saved = tmp_path / "output.bin"
    saved.write_bytes(output)
    tool = tmp_path / "lmutil"
    tool.write_text(f"#!/bin/sh\nexec cat {saved}\n")
    tool.chmod(0o755)
    return str(tool)


def test_a_tool_writing_utf16_is_read_and_inconsistent_figures_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (CLASSES / "lmstat_inconsistent.txt").read_text().replace("\n", "\r\n")
    tool = saved_output_tool(tmp_path, text.encode("utf-16"))

    result = poll_configuration(configuration("flexlm", "lic1:27000"), lambda _: tool, TIMEOUT)

    assert result.status == "ok"
    assert {name: (u.total, u.used) for name, u in (result.features or {}).items()} == {
        "overbooked": (4, 6),
        "stale": (10, 5),
        "fine": (10, 3),
    }
    warnings = [r.getMessage() for r in caplog.records if "inconsistent figures" in r.getMessage()]
    assert len(warnings) == 2
    assert warnings[0].startswith("license server lic1:27000 (flexlm): inconsistent figures: ")


def test_an_error_for_one_feature_is_kept_with_the_poll(tmp_path: Path) -> None:
    output = (CLASSES / "lmstat_several_vendors.txt").read_bytes()
    tool = saved_output_tool(tmp_path, output)

    result = poll_configuration(configuration("flexlm", "lic1:27000"), lambda _: tool, TIMEOUT)

    assert result.usage("starccm") is not None
    assert result.usage("matlab") is None
    assert result.feature_error("matlab") == "Error: 50 licenses, unsupported by licensed server"
