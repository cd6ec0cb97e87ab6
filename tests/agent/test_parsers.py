"""Parsers on the real captured outputs (tests/agent/data/real, copied from the shared samples).

The expected values (data/real/expected.json) are the ones the samples README lists; the agent's
reservation arithmetic depends on every total, used figure and checkout being exactly right.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agent.parsers import Checkout, FeatureUsage, ServerUnreadable, parse
from lm_common.facts import SERVER_TYPES

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
# What each sample must parse to, transcribed from the samples README.
EXPECTED_FILE = REAL / "expected.json"


def expected_usage(sample: str) -> dict[str, FeatureUsage]:
    features = json.loads(EXPECTED_FILE.read_text(encoding="utf-8"))[sample]["features"]
    return {
        name: FeatureUsage(
            feature["total"], feature["used"], [Checkout(*use) for use in feature["uses"]]
        )
        for name, feature in features.items()
    }


DOWN = {
    "flexlm": ("lmstat_server_down.txt", "Cannot connect to license server"),
    "rlm": ("rlmstat_server_down.txt", 'Error connecting to "rlm" server'),
    "lsdyna": ("lstc_qrun_server_down.txt", "ERROR failed to open server localhost"),
    "lmx": ("lmxendutil_server_down.txt", "There are no license server(s) available."),
    "olicense": ("olixtool_server_down.txt", "OlComm 454 Request cannot connect to target"),
    "dsls": ("dslicsrv_server_down.txt", "Cannot connect to server localhost on port 1234"),
}

SAMPLES = [
    pytest.param(entry["type"], sample, id=sample)
    for sample, entry in json.loads(EXPECTED_FILE.read_text(encoding="utf-8")).items()
]


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_real_sample_parses_to_the_documented_usage(server_type: str, sample: str) -> None:
    assert parse(server_type, real(sample)).features == expected_usage(sample)


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_windows_line_endings_give_the_same_usage(server_type: str, sample: str) -> None:
    text = real(sample).replace("\n", "\r\n")
    assert parse(server_type, text).features == expected_usage(sample)


@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_extra_blank_lines_give_the_same_usage(server_type: str, sample: str) -> None:
    text = real(sample).replace("\n", "\n\n\n")
    assert parse(server_type, text).features == expected_usage(sample)


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
        assert set(result.features) <= set(expected_usage(sample))


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_corrupted_outputs_give_data_or_unreadable_never_a_crash(server_type: str) -> None:
    """Seeded random corruption (changed, dropped and inserted characters) of every sample."""
    samples = [path.read_text(encoding="utf-8") for path in sorted(DATA.rglob("*.txt"))]
    rng = random.Random(server_type)
    for _ in range(300):
        characters = list(rng.choice(samples))
        for _ in range(rng.randint(1, 30)):
            position = rng.randrange(len(characters))
            characters[position : position + rng.randint(0, 1)] = rng.choice(
                ["", "0", "9", ":", ";", ",", "@", "#", "(", ")", "|", "-", " ", "\n", "\t", "\r"]
            )
        try:
            result = parse(server_type, "".join(characters))
        except ServerUnreadable:
            continue
        assert all(usage.total >= 0 and usage.used >= 0 for usage in result.features.values())
