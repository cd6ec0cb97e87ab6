"""agent.tools: the real tools' command lines, which the agent runs and the fake tools accept."""

from __future__ import annotations

import pytest

from agent.tools import ToolCommand, match_arguments, tool_command
from lm_common.facts import SERVER_TYPES


@pytest.mark.parametrize(
    ("server_type", "expected"),
    [
        (
            "flexlm",
            ToolCommand(["/opt/lmutil", "lmstat", "-c", "27000@lic-1.example.com", "-a"], None),
        ),
        (
            "rlm",
            ToolCommand(
                ["/opt/lmutil", "rlmstat", "-c", "27000@lic-1.example.com", "-a", "-p"], None
            ),
        ),
        ("lsdyna", ToolCommand(["/opt/lmutil", "-s", "27000@lic-1.example.com", "-R"], None)),
        (
            "lmx",
            ToolCommand(
                ["/opt/lmutil", "-licstat", "-host", "lic-1.example.com", "-port", "27000"], None
            ),
        ),
        ("olicense", ToolCommand(["/opt/lmutil", "-sv", "lic-1.example.com:27000"], None)),
        (
            "dsls",
            ToolCommand(
                ["/opt/lmutil", "-admin"],
                "connect lic-1.example.com 27000\ngetLicenseUsage -csv\nquit\n",
            ),
        ),
    ],
)
def test_command_lines_are_the_real_tools(server_type: str, expected: ToolCommand) -> None:
    assert tool_command(server_type, "/opt/lmutil", "lic-1.example.com", 27000) == expected


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_every_server_type_has_a_command_line(server_type: str) -> None:
    command = tool_command(server_type, "/opt/tool", "lic1", 27000)
    assert command.argv[0] == "/opt/tool" and len(command.argv) > 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("sentinel", "/opt/tool", "lic1", 1), "unknown license server type 'sentinel'"),
        (("flexlm", "", "lic1", 1), "no path given for the lmutil tool"),
        (("flexlm", "/opt/tool", "", 1), "invalid license server host ''"),
        (("flexlm", "/opt/tool", "-c", 1), "invalid license server host '-c'"),
        (("flexlm", "/opt/tool", "lic1 -a", 1), "invalid license server host 'lic1 -a'"),
        (("flexlm", "/opt/tool", "lic1", 0), "invalid license server port 0"),
        (("flexlm", "/opt/tool", "lic1", 65536), "invalid license server port 65536"),
        (("flexlm", "/opt/tool", "lic1", "27000"), "invalid license server port '27000'"),
        (("flexlm", "/opt/tool", "lic1", True), "invalid license server port True"),
    ],
)
def test_bad_server_addresses_are_refused_before_anything_runs(
    arguments: tuple, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tool_command(*arguments)


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_match_arguments_reads_back_exactly_what_tool_command_builds(server_type: str) -> None:
    argv = tool_command(server_type, "/opt/tool", "lic_2.example", 1055).argv[1:]
    expected = {} if server_type == "dsls" else {"host": "lic_2.example", "port": "1055"}

    assert match_arguments(server_type, argv) == expected
    assert match_arguments(server_type, [*argv, "-v"]) is None
    assert match_arguments(server_type, argv[:-1]) is None
    assert match_arguments(server_type, [item.upper() for item in argv]) is None


@pytest.mark.parametrize(
    ("server_type", "arguments"),
    [
        ("flexlm", ["lmstat", "-c", "0@lic1", "-a"]),
        ("flexlm", ["lmstat", "-c", "027000@lic1", "-a"]),
        ("flexlm", ["lmstat", "-c", "lic1", "-a"]),
        ("flexlm", ["lmstat", "-a", "-c", "27000@lic1"]),
        ("lmx", ["-licstat", "-host", "lic1", "-port", "x1"]),
        ("olicense", ["-sv", "lic1"]),
        ("olicense", ["-sv", ".lic1:27000"]),
    ],
)
def test_match_arguments_refuses_malformed_addresses_and_orders(
    server_type: str, arguments: list[str]
) -> None:
    assert match_arguments(server_type, arguments) is None
