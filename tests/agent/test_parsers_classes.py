"""Parsers on classes of real-world format differences (tests/agent/data/classes, written from
the tools' documented formats): how checkout lines name user, host and display; qualifiers and
missing counts; old lmstat totals; several vendor daemons and ISV servers; indentation; one
product in several pools; encodings and line ends; errors for one feature among good ones;
figures that do not add up.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from agent.parsers import (
    Checkout,
    FeatureUsage,
    OutputNotUnderstood,
    ServerUnreadable,
    parse,
)
from lm_common.facts import SERVER_TYPES

DATA = Path(__file__).parent / "data"
CLASSES = DATA / "classes"
REAL = DATA / "real"
EXPECTED = json.loads((REAL / "expected.json").read_text(encoding="utf-8"))
SAMPLES = [pytest.param(entry["type"], name, id=name) for name, entry in EXPECTED.items()]


def usage(total: int, used: int, *uses: tuple[str, str, int]) -> FeatureUsage:
    return FeatureUsage(total, used, [Checkout(*use) for use in uses])


def expected(sample: str) -> dict[str, FeatureUsage]:
    return {
        name: usage(feature["total"], feature["used"], *map(tuple, feature["uses"]))
        for name, feature in EXPECTED[sample]["features"].items()
    }


def read(name: str) -> str:
    return (CLASSES / name).read_text(encoding="utf-8")


def test_flexlm_user_and_host_are_found_whatever_the_display_field_holds() -> None:
    """Terminal, repeated host, X display with an id after it, no display, free-text display
    with blanks, user names with blanks, tab indentation, PID and linger suffixes, trailing
    blanks; a queued user holds nothing."""
    result = parse("flexlm", read("lmstat_checkout_lines.txt"))
    assert result.features == {
        "solver": usage(
            40,
            19,
            ("alice", "node01", 4),
            ("bob", "node02", 2),
            ("carol", "node03", 3),
            ("dave", "node04", 2),
            ("erin", "node05", 1),
            ("frank", "node06", 1),
            ("gina", "node07", 2),
            ("Mary Jones", "WS-MJONES", 1),
            ("Ann Lee Smith", "WKS42", 3),
        ),
        "solver_gui": usage(1, 1, ("alice", "ws-01.example.org", 1)),
    }
    assert result.warnings == [] and result.unreadable == {}


def test_flexlm_qualifiers_missing_counts_and_totals_without_an_in_use_figure() -> None:
    """`feature=` qualifiers anywhere on the line; no count means one license; an older
    "(Total of N licenses available)" header takes its in-use figure from the checkouts."""
    result = parse("flexlm", read("lmstat_qualifiers_and_old_totals.txt"))
    assert result.features == {
        "cae_pre": usage(6, 3, ("ivan", "n101", 2), ("judy", "n102", 1)),
        "cae_post": usage(3, 0),
        "cae_solve": usage(10, 5, ("kim", "n103", 3), ("liam", "n104", 1), ("mona", "n105", 1)),
    }


def test_flexlm_several_vendor_daemons_add_up_and_an_erroring_one_is_unreadable() -> None:
    result = parse("flexlm", read("lmstat_several_vendors.txt"))
    assert result.features == {
        "cfd_base": usage(25, 7, ("nora", "n201", 5), ("omar", "n202", 2)),
        "hpc_pack": usage(12, 3, ("nora", "n201", 2), ("pete", "n203", 1)),
        "starccm": usage(12, 0),
    }
    assert result.unreadable == {
        "MATLAB": "Error: 50 licenses, unsupported by licensed server",
        "Simulink": "Error: 20 licenses, unsupported by licensed server",
    }


def test_inconsistent_figures_are_read_conservatively_and_reported() -> None:
    """Checkouts summing past the in-use figure raise it; more in use than the total stays as
    printed (the pool is full); both are named in the warnings for the log."""
    result = parse("flexlm", read("lmstat_inconsistent.txt"))
    assert {name: (u.total, u.used) for name, u in result.features.items()} == {
        "overbooked": (4, 6),
        "stale": (10, 5),
        "fine": (10, 3),
    }
    assert len(result.warnings) == 2
    assert result.warnings[0].startswith("overbooked: 6 in use of a total of 4")
    assert result.warnings[1].startswith("stale: checkouts sum to 5, more than 2 in use")


@pytest.mark.parametrize("indent", ["", "\t", "    "], ids=["flush", "tab", "spaces"])
def test_rlm_pools_of_one_product_add_up_across_versions_isvs_and_indentation(
    indent: str,
) -> None:
    """mesher: three pools at alpha (two of v4.1 with different expiry dates, one v3.5) and one
    at beta; checkouts naming v4.0 or v3.5 belong to it too; the usage section comes before the
    pool section; a queued request and an uncounted pool are left out; `[I: ...]` data ignored."""
    text = "\n".join(indent + line for line in read("rlmstat_unindented_pools.txt").split("\n"))
    result = parse("rlm", text)
    assert result.features == {
        "mesher": usage(
            11, 6, ("uma", "n401", 2), ("vic", "n402.example.org", 1), ("xena", "n404", 3)
        ),
        "optimizer": usage(4, 1, ("yuri", "n405", 1)),
    }


def test_lmx_feature_with_an_error_block_is_unreadable_and_the_others_are_read() -> None:
    result = parse("lmx", (DATA / "variants" / "lmxendutil_variants.txt").read_text())
    assert set(result.features) == {"CFD_solver-2:pro", "HyperWorks"}
    assert result.unreadable == {
        "OldTool": "LM-X Error: (Internal: 11 Feature: OldTool) License has expired."
    }


def _utf16_as_8_bit(text: str) -> str:
    """What a UTF-16 output looks like when something upstream decoded it as Latin-1."""
    return (codecs.BOM_UTF16_LE + text.encode("utf-16-le")).decode("latin-1")


ENCODINGS = {
    "utf-16-bom": lambda text: text.encode("utf-16"),
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-read-as-latin-1": _utf16_as_8_bit,
    "crlf-utf-16": lambda text: text.replace("\n", "\r\n").encode("utf-16"),
    "cr-only": lambda text: text.replace("\n", "\r"),
    "trailing-blank-lines": lambda text: text + "\n\n   \n\t\n\n",
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("server_type", "sample"), SAMPLES)
def test_encodings_line_ends_and_trailing_blanks_give_the_same_usage(
    server_type: str, sample: str, encoding: str
) -> None:
    text = (REAL / sample).read_text(encoding="utf-8")
    assert parse(server_type, ENCODINGS[encoding](text)).features == expected(sample)


@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_an_error_line_is_unreadable_and_an_unknown_format_is_not_understood(
    server_type: str,
) -> None:
    """The agent tells "the server printed an error" from "the parser does not know this"."""
    with pytest.raises(OutputNotUnderstood):
        parse(server_type, "Some other tool's report\nitem 1 2 3\nitem 4 5 6\n")
    with pytest.raises(ServerUnreadable) as raised:
        parse(server_type, "Fatal error: cannot connect to license server lic1\n")
    assert not isinstance(raised.value, OutputNotUnderstood)


def test_lsdyna_without_a_queue_column_and_with_a_permanent_expiration() -> None:
    result = parse("lsdyna", read("lstc_qrun_no_queue_column.txt"))
    assert result.features == {
        "LS-DYNA": usage(32, 4, ("alice", "node01", 4)),
        "LS-DYNA_971": usage(32, 4),
        "LS-PREPOST": usage(2, 1, ("bob", "ws-2", 1)),
    }


def test_dsls_columns_are_found_by_name_whatever_their_order_case_and_prefix() -> None:
    """No Editor columns, InUse spelt differently, the header after a prompt: HPC's two license
    entries add up (64 + 16), each entry's InUse counted once; carol is queued."""
    result = parse("dsls", read("dslicsrv_other_columns.txt"))
    assert result.features == {
        "HPC": usage(80, 24, ("alice", "node01", 16), ("bob", "node02", 8)),
        "VIEW": usage(3, 1, ("dave", "ws-4", 1)),
    }


@pytest.mark.parametrize("indent", ["flush", "tab"])
@pytest.mark.parametrize(
    ("server_type", "sample"),
    [sample for sample in SAMPLES if sample.values[0] != "lsdyna"],  # lstc_qrun is columnar
)
def test_indentation_does_not_matter(server_type: str, sample: str, indent: str) -> None:
    """Versions (and copies pasted into tickets) indent differently, or not at all."""
    lines = (REAL / sample).read_text(encoding="utf-8").split("\n")
    if indent == "flush":
        text = "\n".join(line.lstrip() for line in lines)
    else:
        text = "\n".join("\t" + line for line in lines)
    assert parse(server_type, text).features == expected(sample)
