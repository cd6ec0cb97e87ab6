"""The expiry date FlexLM prints under a feature's header is kept (alerts: license expiring)."""

from __future__ import annotations

from datetime import date

from agent.parsers import flexlm

LMSTAT = """\
Users of abaqus:  (Total of 10 licenses issued;  Total of 4 licenses in use)

  "abaqus" v62.2, vendor: ABAQUSLM, expiry: 31-dec-2025

  floating license

    alice node01 /dev/tty (v62.2) (lic1/27000 101), start Thu 10/29 8:09, 3 licenses
Users of abaqus:  (Total of 5 licenses issued;  Total of 0 licenses in use)
  "abaqus" v2023, vendor: ABAQUSLM, expiry: 15-mar-2026
Users of cae:  (Total of 5 licenses issued;  Total of 1 license in use)
  "cae" v62.2, vendor: ABAQUSLM, expiry: permanent(no expiration date)
    bob node02 /dev/tty (v62.2) (lic1/27000 101), start Thu 10/29 8:09
Users of standard:  (Total of 2 licenses issued;  Total of 0 licenses in use)
  "standard" v62.2, vendor: ABAQUSLM, expiry: 1-jan-0
Users of explicit:  (Total of 2 licenses issued;  Total of 0 licenses in use)
  "explicit" v62.2, vendor: ABAQUSLM, expiry: someday
Users of viewer:  (Total of 2 licenses issued;  Total of 0 licenses in use)
"""


def test_the_earliest_expiry_of_a_features_pools_is_kept() -> None:
    features = flexlm.parse(LMSTAT).features
    assert features["abaqus"].expires == date(2025, 12, 31)
    assert (features["abaqus"].total, features["abaqus"].used) == (15, 4)
    assert [use.username for use in features["abaqus"].uses] == ["alice"]


def test_permanent_licenses_never_expire_and_unknown_dates_are_not_kept() -> None:
    features = flexlm.parse(LMSTAT).features
    assert features["cae"].expires == date.max
    assert features["standard"].expires == date.max  # FlexLM's 1-jan-0
    assert features["explicit"].expires is None
    assert features["viewer"].expires is None  # no version line printed
    assert features["cae"].used == 1
