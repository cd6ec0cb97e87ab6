"""Parsers on the real captured outputs (tests/agent/data/real, copied from the shared samples).

The expected values are the ones the samples README lists; the agent's reservation arithmetic
depends on every total, used figure and checkout being exactly right.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.parsers import SERVER_TYPES, Checkout, FeatureUsage, ServerUnreadable, parse

REAL = Path(__file__).parent / "data" / "real"


def usage(total: int, used: int, *uses: tuple[str, str, int]) -> FeatureUsage:
    return FeatureUsage(total, used, [Checkout(*use) for use in uses])


LSDYNA_POOL = usage(500, 440)
LMX_UNLIMITED = usage(2147483647, 0)
EXPECTED = {
    ("flexlm", "lmstat_f_feature.txt"): {
        "TESTFEATURE": usage(
            1000,
            93,
            ("sdmfva", "myserver.example.com", 29),
            ("adfdna", "myserver.example.com", 27),
            ("sdmfva", "myserver.example.com", 37),
        )
    },
    ("flexlm", "lmstat_f_idle.txt"): {"TESTFEATURE": usage(1000, 0)},
    ("rlm", "rlmstat_a_p.txt"): {
        "converge": usage(1, 0),
        "converge_gui": usage(45, 0),
        "converge_gui_polygonica": usage(1, 0),
        "converge_super": usage(
            1000,
            93,
            ("asdj13", "myserver.example.com", 29),
            ("cddcp2", "myserver.example.com", 27),
            ("asdj13", "myserver.example.com", 37),
        ),
        "converge_tecplot": usage(45, 0),
    },
    ("lsdyna", "lstc_qrun_R.txt"): {
        "MPPDYNA": usage(
            500,
            440,
            ("dvds3g", "n-c13.com", 80),
            ("ssss1d", "n-c52.com", 80),
            ("ssss1d", "n-c15.com", 80),
            ("ywap0o", "n-c53.com", 80),
            ("ywap0o", "n-c51.com", 80),
            ("ndha1a", "n-c55.com", 40),
        ),
        **{
            name: LSDYNA_POOL
            for name in (
                "MPPDYNA_971",
                "MPPDYNA_970",
                "MPPDYNA_960",
                "LS-DYNA",
                "LS-DYNA_971",
                "LS-DYNA_970",
                "LS-DYNA_960",
            )
        },
    },
    ("lmx", "lmxendutil_licstat.txt"): {
        "CatiaV5Reader": usage(3, 0),
        "GlobalZoneEU": usage(
            1000003, 40000, ("VRAAFG", "RD0082879", 15000), ("VRAAFG", "RD0082879", 25000)
        ),
        "HWAIFPBS": LMX_UNLIMITED,
        "HWAWPF": LMX_UNLIMITED,
        "HWActivate": LMX_UNLIMITED,
        "HWFlux2D": usage(
            2147483647, 30000, ("VRAAFG", "RD0082879", 15000), ("VRAAFG", "RD0082879", 15000)
        ),
        "HyperWorks": usage(1000000, 25000, ("sssaah", "RD0082406", 25000)),
    },
    ("olicense", "olixtool_sv.txt"): {
        "ftire_adams": usage(
            4, 3, ("sbhyma", "RD0087712", 1), ("sbhyma", "RD0087713", 1), ("user22", "RD0087713", 1)
        )
    },
    ("dsls", "dslicsrv_getlicenseusage_csv.txt"): {
        "PAC": usage(1, 0),
        "PAJ": usage(6, 0),
        "PCA": usage(4, 0),
        "PCO": usage(2, 0),
        "PD5": usage(1, 0),
        "PV6": usage(7, 0),
        "PVG": usage(2, 0),
        "PW7": usage(2000, 2, ("user_1", "nid001627", 2)),
        "PW8": usage(2000, 0),
        "SRU": usage(
            2374,
            1559,
            ("user_2", "nid001626", 493),
            ("user_3", "nid001601", 533),
            ("user_4", "nid001671", 533),
        ),
    },
}

DOWN = {
    "flexlm": ("lmstat_server_down.txt", "Cannot connect to license server"),
    "rlm": ("rlmstat_server_down.txt", 'Error connecting to "rlm" server'),
    "lsdyna": ("lstc_qrun_server_down.txt", "ERROR failed to open server localhost"),
    "lmx": ("lmxendutil_server_down.txt", "There are no license server(s) available."),
    "olicense": ("olixtool_server_down.txt", "OlComm 454 Request cannot connect to target"),
    "dsls": ("dslicsrv_server_down.txt", "Cannot connect to server localhost on port 1234"),
}

SAMPLES = [pytest.param(kind, name, id=name) for kind, name in EXPECTED]


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_real_sample_parses_to_the_documented_usage(server_type: str, sample: str) -> None:
    assert parse(server_type, real(sample)) == EXPECTED[server_type, sample]


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_windows_line_endings_give_the_same_usage(server_type: str, sample: str) -> None:
    text = real(sample).replace("\n", "\r\n")
    assert parse(server_type, text) == EXPECTED[server_type, sample]


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_extra_blank_lines_give_the_same_usage(server_type: str, sample: str) -> None:
    text = real(sample).replace("\n", "\n\n\n")
    assert parse(server_type, text) == EXPECTED[server_type, sample]


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_server_down_output_is_unreadable_and_quotes_the_tool_error(server_type: str) -> None:
    sample, error_line = DOWN[server_type]
    with pytest.raises(ServerUnreadable) as raised:
        parse(server_type, real(sample))
    assert error_line in str(raised.value)


@pytest.mark.parametrize("server_type", SERVER_TYPES)
@pytest.mark.parametrize(
    "text",
    ["", "\n\n  \r\n", "%%%% \x00\x1b[2J ??? 0x7f 12 of @@\n;;;;;\n", "Users of nothing\n---\n"],
    ids=["empty", "blank", "garbage", "fragments"],
)
def test_output_without_usage_is_unreadable(server_type: str, text: str) -> None:
    with pytest.raises(ServerUnreadable):
        parse(server_type, text)


def test_unknown_server_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown license server type 'sentinel'.*flexlm"):
        parse("sentinel", real("lmstat_f_feature.txt"))


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_output_cut_at_any_line_gives_data_or_unreadable_never_a_crash(
    server_type: str, sample: str
) -> None:
    """A tool killed at the timeout leaves a truncated output: it must never crash the agent."""
    lines = real(sample).splitlines(keepends=True)
    for end in range(len(lines)):
        cut = "".join(lines[:end]) + lines[end][: len(lines[end]) // 2]
        try:
            result = parse(server_type, cut)
        except ServerUnreadable:
            continue
        assert set(result) <= set(EXPECTED[server_type, sample])
