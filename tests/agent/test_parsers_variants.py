"""Parsers on the variations real servers print (tests/agent/data/variants, written from the
tools' documented formats): linger, queued users, RESERVATION lines, uncounted or node-locked
features, several versions of one feature, an error for one feature among good ones, triad server
lists, names with - _ : and digits. Each file is also read with Windows line endings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.parsers import Checkout, FeatureUsage, ServerUnreadable, parse

VARIANTS = Path(__file__).parent / "data" / "variants"


def usage(total: int, used: int, *uses: tuple[str, str, int]) -> FeatureUsage:
    return FeatureUsage(total, used, [Checkout(*use) for use in uses])


def read_variant(name: str, line_end: str) -> str:
    return (VARIANTS / name).read_text(encoding="utf-8").replace("\n", line_end)


LINE_ENDINGS = pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["unix", "windows"])


@LINE_ENDINGS
def test_flexlm_triad_with_linger_queue_reservations_versions_and_bad_features(
    line_end: str,
) -> None:
    """Header counts rule `used` (lingering and reserved licenses are in use); the queued user
    and the RESERVATION line are not checkouts; uncounted and erroring features are left out;
    `ansys` printed twice (two license files) adds up; a user name with a space survives."""
    result = parse("flexlm", read_variant("lmstat_triad_variants.txt", line_end)).features
    assert result == {
        "abaqus": usage(
            20, 10, ("alice", "node01", 4), ("bob", "node02", 1), ("John Smith", "ws-17", 3)
        ),
        "cae_post-2024:x1": usage(5, 1, ("erin", "gpu-node-07", 1)),
        "ansys": usage(12, 3, ("frank", "node09", 2), ("gina", "node10", 1)),
    }


def test_flexlm_vendor_daemon_down_with_every_feature_in_error_is_unreadable() -> None:
    with pytest.raises(ServerUnreadable, match="The desired vendor daemon is down"):
        parse("flexlm", read_variant("lmstat_vendor_down.txt", "\n"))


@LINE_ENDINGS
def test_rlm_versions_add_up_uncounted_and_queued_are_left_out(line_end: str) -> None:
    """Two ISV servers, two versions of converge_super (10 + 5), an uncounted viewer pool and
    a queued request; `used` is the servers' inuse, reservations are not added on top."""
    result = parse("rlm", read_variant("rlmstat_variants.txt", line_end)).features
    assert result == {
        "converge_super": usage(
            15, 5, ("alice", "node01", 3), ("bob", "node02", 1), ("carol", "ws-3", 1)
        ),
        "post-proc_2:gpu": usage(6, 2, ("erin", "gpu-07", 2)),
    }


@LINE_ENDINGS
def test_lsdyna_group_members_share_the_pool_and_standalone_programs_keep_their_own(
    line_end: str,
) -> None:
    """The running/queued listings above the license table are not read as checkouts (bob is
    only queued); LS-OPT, below the group line, is a pool of its own: used = MAX - FREE."""
    result = parse("lsdyna", read_variant("lstc_qrun_variants.txt", line_end)).features
    assert result == {
        "MPPDYNA_971": usage(500, 64, ("alice", "node01", 64)),
        "LS-PrePost_4:1": usage(500, 64),
        "LS-OPT": usage(15, 10, ("carol", "node03", 10)),
    }


@LINE_ENDINGS
def test_lmx_versions_add_up_queued_and_erroring_features_are_left_out(line_end: str) -> None:
    result = parse("lmx", read_variant("lmxendutil_variants.txt", line_end)).features
    assert result == {
        "CFD_solver-2:pro": usage(15, 3, ("alice", "node01", 2), ("carol", "ws-3", 1)),
        "HyperWorks": usage(2147483647, 0),
    }


@LINE_ENDINGS
def test_olicense_blocks_add_up_node_locked_queued_and_broken_blocks_are_left_out(
    line_end: str,
) -> None:
    result = parse("olicense", read_variant("olixtool_variants.txt", line_end)).features
    assert result == {
        "ftire-2:x_tyre": usage(
            5, 4, ("alice", "node01", 2), ("bob", "node02", 1), ("erin", "node05", 1)
        ),
    }


@LINE_ENDINGS
def test_dsls_entries_add_up_queued_rows_and_bad_rows_are_left_out(line_end: str) -> None:
    """Two license entries of HPC-token_2:x (releases 8 and 9): 100 + 50 tokens, each entry's
    Inuse counted once however many rows repeat it; carol is queued; a row whose Count is not a
    number is skipped; the header follows an `admin >` prompt."""
    result = parse("dsls", read_variant("dslicsrv_variants.txt", line_end)).features
    assert result == {
        "HPC-token_2:x": usage(150, 10, ("alice", "node01", 6), ("bob", "node02", 4)),
        "SIMULIA": usage(30, 3, ("dave", "ws-7", 3)),
    }
