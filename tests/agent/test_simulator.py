"""lm-simulator: its state commands, and the fake tools it installs run as real executables.

The tools are run the way the agent runs them (argv and stdin from agent.tools.tool_command), from
another directory and with an empty environment, as slurmctld hooks and cron do.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from agent.parsers import ServerUnreadable, parse
from agent.simulator.fake_tool import USAGE_EXIT_CODE
from agent.simulator.formats import DOWN_EXIT_CODE, GARBAGE
from agent.simulator.main import main as simulator
from agent.tools import tool_command
from devstack.processes import console_script
from devstack.simulator import Simulator, SimulatorRefused
from lm_common.facts import SERVER_TYPES, TOOL_BY_SERVER_TYPE

REAL = Path(__file__).parent / "data" / "real"
PORT = 27000


ADDRESS = f"lic1:{PORT}"


def popen_tool(
    sim: Simulator, server_type: str, host: str = "lic1", port: int = PORT
) -> subprocess.Popen[str]:
    """The fake tool run as the agent runs it, from another directory, with no environment."""
    command = tool_command(server_type, sim.tool(server_type), host, port)
    elsewhere = sim.root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    process = subprocess.Popen(
        command.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=elsewhere,
        env={},
    )
    assert process.stdin and process.stdout and process.stderr
    if command.stdin is not None:
        process.stdin.write(command.stdin)
    process.stdin.close()
    return process


def run_tool(
    sim: Simulator, server_type: str, host: str = "lic1", port: int = PORT
) -> tuple[int, str]:
    process = popen_tool(sim, server_type, host, port)
    assert process.stdout and process.stderr
    output = process.stdout.read()
    process.stdout.close()
    process.stderr.close()
    return process.wait(timeout=30), output


@pytest.fixture
def sim(tmp_path: Path) -> Simulator:
    return Simulator(tmp_path / "simulator").install()


# The real samples and what they hold (see test_parsers): the simulator is set up to mirror each.
SAMPLES = json.loads((REAL / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_tool_output_parses_like_the_real_sample_it_mirrors(sim: Simulator, sample: str) -> None:
    server_type, features = SAMPLES[sample]["type"], SAMPLES[sample]["features"]
    address = sim.add_server(server_type, ADDRESS)
    for name, feature in features.items():
        sim.add_feature(address, name, feature["total"])
    for name, feature in features.items():
        for user, host, count in feature["uses"]:
            sim.checkout(address, name, user, host, count)

    exit_code, output = run_tool(sim, server_type)

    assert exit_code == 0
    real = parse(server_type, (REAL / sample).read_text(encoding="utf-8"))
    assert parse(server_type, output).features == real.features


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_checkout_and_checkin_change_what_the_tool_prints(sim: Simulator, server_type: str) -> None:
    address = sim.add_server(server_type, ADDRESS)
    sim.add_feature(address, "solver-2:x_y", 10)
    sim.checkout(address, "solver-2:x_y", "alice", "node01", 4)
    sim.checkout(address, "solver-2:x_y", "bob", "node02", 2)

    busy = parse(server_type, run_tool(sim, server_type)[1]).features["solver-2:x_y"]
    assert (busy.total, busy.used) == (10, 6)
    assert sorted((use.username, use.lead_host, use.count) for use in busy.uses) == [
        ("alice", "node01", 4),
        ("bob", "node02", 2),
    ]

    assert sim.command("checkin", "--server", address, "solver-2:x_y", "--user", "alice") == 0
    after = parse(server_type, run_tool(sim, server_type)[1]).features["solver-2:x_y"]
    assert (after.used, [use.username for use in after.uses]) == (2, ["bob"])


def test_checkout_beyond_the_free_licenses_is_denied_and_changes_nothing(sim: Simulator) -> None:
    address = sim.add_server("flexlm", ADDRESS)
    sim.add_feature(address, "abaqus", 5)
    sim.checkout(address, "abaqus", "alice", "node01", 4)
    before = sim.state_file.read_text()

    with pytest.raises(SimulatorRefused) as refused:
        sim.checkout(address, "abaqus", "bob", "node02", 2)
    assert refused.value.exit_code == 1

    assert sim.state_file.read_text() == before


def test_lsdyna_programs_draw_from_one_pool(sim: Simulator) -> None:
    address = sim.add_server("lsdyna", ADDRESS)
    sim.add_feature(address, "MPPDYNA", 100)
    sim.add_feature(address, "LS-DYNA", 100)
    sim.checkout(address, "MPPDYNA", "alice", "node01", 80)

    with pytest.raises(SimulatorRefused) as refused:
        sim.checkout(address, "LS-DYNA", "bob", "node02", 30)
    assert refused.value.exit_code == 1
    sim.checkout(address, "LS-DYNA", "bob", "node02", 20)
    usage = parse("lsdyna", run_tool(sim, "lsdyna")[1])
    assert {name: (u.total, u.used) for name, u in usage.features.items()} == {
        "MPPDYNA": (100, 100),
        "LS-DYNA": (100, 100),
    }


def test_checkin_of_a_user_on_one_host_keeps_their_other_checkouts(sim: Simulator) -> None:
    address = sim.add_server("rlm", ADDRESS)
    sim.add_feature(address, "converge", 10)
    sim.add_feature(address, "tecplot", 10)
    for feature, host in (("converge", "node01"), ("converge", "node02"), ("tecplot", "node01")):
        sim.checkout(address, feature, "alice", host, 1)

    assert sim.command("checkin", "--server", address, "--user", "alice", "--host", "node01") == 0
    remaining = json.loads(sim.state_file.read_text())["servers"][0]["checkouts"]
    assert [(c["feature"], c["host"]) for c in remaining] == [("converge", "node02")]

    assert sim.command("checkin", "--server", address, "--user", "alice") == 0
    assert sim.command("checkin", "--server", address, "--user", "alice") == 2


def test_checkin_of_a_count_returns_one_checkout_of_that_size(sim: Simulator) -> None:
    """Two jobs of one user on one node: each job's exit checks in only its own licenses."""
    address = sim.add_server("flexlm", ADDRESS)
    sim.add_feature(address, "abaqus", 10)
    for count in (2, 3, 2):
        sim.checkout(address, "abaqus", "alice", "node01", count)

    checkin = ("checkin", "--server", address, "abaqus", "--user", "alice", "--host", "node01")
    assert sim.command(*checkin, "--count", "2") == 0
    remaining = json.loads(sim.state_file.read_text())["servers"][0]["checkouts"]
    assert sorted(c["count"] for c in remaining) == [2, 3]
    assert sim.command(*checkin, "--count", "4") == 2, "no checkout of 4"


@pytest.mark.parametrize("server_type", SERVER_TYPES)
@pytest.mark.parametrize(("fault", "expected_exit"), [("down", DOWN_EXIT_CODE), ("garbage", 0)])
def test_down_or_garbage_server_output_is_unreadable(
    sim: Simulator, server_type: str, fault: str, expected_exit: int
) -> None:
    """down: the real tool's error text and non-zero exit; garbage: exit 0 but no usage."""
    address = sim.add_server(server_type, ADDRESS)
    sim.add_feature(address, "abaqus", 10)
    assert sim.command("fault", "--server", address, fault) == 0

    exit_code, output = run_tool(sim, server_type)

    assert exit_code == expected_exit
    with pytest.raises(ServerUnreadable):
        parse(server_type, output)


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_garbage_is_unreadable_by_every_parser(server_type: str) -> None:
    with pytest.raises(ServerUnreadable):
        parse(server_type, GARBAGE)


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_server_missing_from_the_state_answers_like_a_down_server(
    sim: Simulator, server_type: str
) -> None:
    other_type = "rlm" if server_type == "flexlm" else "flexlm"
    sim.add_server(
        other_type, ADDRESS
    )  # same host:port, another kind of server: no answer to this tool
    for port in (PORT, PORT + 1):
        exit_code, output = run_tool(sim, server_type, port=port)
        assert exit_code == DOWN_EXIT_CODE
        with pytest.raises(ServerUnreadable):
            parse(server_type, output)


def test_hang_fault_keeps_the_tool_running_past_a_timeout(sim: Simulator) -> None:
    address = sim.add_server("flexlm", ADDRESS)
    assert sim.command("fault", "--server", address, "hang") == 0
    process = popen_tool(sim, "flexlm")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    assert sim.command("fault", "--server", address, "none") == 0
    assert run_tool(sim, "flexlm")[0] == 0


def test_latency_delays_the_answer(sim: Simulator) -> None:
    address = sim.add_server("olicense", ADDRESS)
    sim.add_feature(address, "ftire_adams", 4)
    assert sim.command("latency", "--server", address, "0.5") == 0

    start = time.monotonic()
    exit_code, output = run_tool(sim, "olicense")

    assert time.monotonic() - start >= 0.5
    assert exit_code == 0 and parse("olicense", output).features["ftire_adams"].total == 4


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_tools_refuse_other_arguments_with_a_usage_error(sim: Simulator, server_type: str) -> None:
    tool = str(sim.tool_dir / TOOL_BY_SERVER_TYPE[server_type])
    good = tool_command(server_type, tool, "lic1", PORT).argv
    for argv in ([tool], [*good, "-x"], [tool, "--help"]):
        result = subprocess.run(argv, capture_output=True, text=True, env={}, input="", timeout=30)
        assert result.returncode == USAGE_EXIT_CODE
        assert result.stderr.startswith("usage: ") and result.stdout == ""


def test_dsls_shell_refuses_unknown_commands(sim: Simulator) -> None:
    sim.add_server("dsls", ADDRESS)
    tool = str(sim.tool_dir / "DSLicSrv")
    result = subprocess.run(
        [tool, "-admin"],
        input="connect lic1 27000\nshutdown\n",
        capture_output=True,
        text=True,
        env={},
    )
    assert result.returncode == USAGE_EXIT_CODE
    assert "invalid command: shutdown" in result.stderr


def test_tools_without_a_baked_state_read_the_environment(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = sim.add_server("lmx", ADDRESS)
    sim.add_feature(address, "HyperWorks", 7)
    unbaked = tmp_path / "unbaked"
    monkeypatch.delenv("LM_SIMULATOR_STATE", raising=False)
    assert simulator(["install-tools", str(unbaked)]) == 0
    argv = tool_command("lmx", str(unbaked / "lmxendutil"), "lic1", PORT).argv

    without = subprocess.run(argv, capture_output=True, text=True, env={})
    with_env = subprocess.run(
        argv, capture_output=True, text=True, env={"LM_SIMULATOR_STATE": str(sim.state_file)}
    )

    assert without.returncode == USAGE_EXIT_CODE and "LM_SIMULATOR_STATE" in without.stderr
    assert (
        with_env.returncode == 0 and parse("lmx", with_env.stdout).features["HyperWorks"].total == 7
    )


def test_concurrent_checkouts_are_all_kept_and_readers_never_see_a_torn_file(
    sim: Simulator,
) -> None:
    address = sim.add_server("flexlm", ADDRESS)
    sim.add_feature(address, "abaqus", 12)
    writers = [
        subprocess.Popen(
            [
                console_script("lm-simulator"),
                "--state",
                str(sim.state_file),
                "checkout",
                "--server",
                address,
                "abaqus",
                "--user",
                f"user{n}",
                "--host",
                f"node{n}",
                "--count",
                "1",
            ],
        )
        for n in range(12)
    ]
    readers = [popen_tool(sim, "flexlm") for _ in range(6)]
    for reader in readers:
        assert reader.wait(timeout=60) == 0
        parse("flexlm", reader.stdout.read())
        reader.stdout.close()
        reader.stderr.close()
    assert [writer.wait(timeout=60) for writer in writers] == [0] * 12

    final = parse("flexlm", run_tool(sim, "flexlm")[1]).features["abaqus"]
    assert (final.used, len(final.uses)) == (12, 12)
    with pytest.raises(SimulatorRefused) as refused:
        sim.checkout(address, "abaqus", "late", "node99", 1)
    assert refused.value.exit_code == 1


def test_show_prints_the_state_as_json(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    address = sim.add_server("dsls", ADDRESS)
    sim.add_feature(address, "SRU", 3)
    capsys.readouterr()

    assert sim.command("show") == 0

    server = json.loads(capsys.readouterr().out)["servers"][0]
    assert server == {
        "type": "dsls",
        "host": "lic1",
        "port": PORT,
        "fault": "none",
        "latency": 0.0,
        "features": [{"name": "SRU", "total": 3}],
        "checkouts": [],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["add-server", "--type", "sentinel", "--host", "h", "--port", "1"],
            "invalid choice: 'sentinel'",
        ),
        (["add-server", "--type", "rlm", "--host", "h", "--port", "70000"], "invalid port '70000'"),
        (
            ["add-server", "--type", "rlm", "--host", "bad host", "--port", "1"],
            "invalid host 'bad host'",
        ),
        (
            ["add-server", "--type", "flexlm", "--host", "lic1", "--port", str(PORT)],
            "already exists",
        ),
        (["add-feature", "--server", "lic1", "abaqus", "--total", "3"], "expected HOST:PORT"),
        (["add-feature", "--server", "nowhere:1", "abaqus", "--total", "3"], "no server nowhere:1"),
        (
            ["add-feature", "--server", f"lic1:{PORT}", "abaqus", "--total", "-1"],
            "invalid count '-1'",
        ),
        (
            ["set-total", "--server", f"lic1:{PORT}", "missing", "--total", "3"],
            "has no feature 'missing'",
        ),
        (
            [
                "checkout",
                "--server",
                f"lic1:{PORT}",
                "abaqus",
                "--user",
                "u",
                "--host",
                "h",
                "--count",
                "0",
            ],
            "invalid count",
        ),
        (["fault", "--server", f"lic1:{PORT}", "explode"], "invalid choice: 'explode'"),
        (["latency", "--server", f"lic1:{PORT}", "-2"], "invalid latency '-2'"),
        (["latency", "--server", f"lic1:{PORT}", "nan"], "invalid latency 'nan'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_error(
    sim: Simulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sim.add_server("flexlm", ADDRESS)
    capsys.readouterr()
    try:
        exit_code = sim.command(*args)
    except SystemExit as exit_:
        exit_code = exit_.code
    assert exit_code == 2
    assert message in capsys.readouterr().err


def test_missing_or_broken_state_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LM_SIMULATOR_STATE", raising=False)
    assert simulator(["show"]) == 2
    assert "pass --state PATH or set LM_SIMULATOR_STATE" in capsys.readouterr().err

    missing = tmp_path / "missing.json"
    assert simulator(["--state", str(missing), "show"]) == 2
    assert "does not exist: run `lm-simulator init`" in capsys.readouterr().err

    broken = tmp_path / "broken.json"
    broken.write_text('{"servers": [')
    monkeypatch.setenv("LM_SIMULATOR_STATE", str(broken))
    assert simulator(["add-server", "--type", "rlm", "--host", "h", "--port", "1"]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert broken.read_text() == '{"servers": ['
