"""The license-error catalogue, per vendor, on error texts in the vendors' documented formats."""

from __future__ import annotations

import re

import pytest

from agent.license_errors import MAX_QUOTE, LicenseError, search


@pytest.mark.parametrize(
    ("output", "rule"),
    [
        # FlexNet / FLEXlm: "error:MAJOR,MINOR", the meaning on the same or another line.
        (
            "Checking out abaqus...\nFlexNet Licensing error:-4,132. Licensed number of users"
            " already reached.\n",
            "FlexNet -4 'Licensed number of users already reached'",
        ),
        (
            "Licensed number of users already reached.\nFeature: MSC_NASTRAN\n",
            "FlexNet -4 'Licensed number of users already reached'",
        ),
        (
            'FLEXlm error: -15,10.  System Error: 111 "Connection refused"',
            "FlexNet -15 'Cannot connect to license server system'",
        ),
        (
            "Cannot connect to license server system.\n The license server manager (lmgrd) has"
            " not been started yet,",
            "FlexNet -15 'Cannot connect to license server system'",
        ),
        (
            "FlexNet Licensing error:-18,147",
            "FlexNet -18 'License server system does not support this feature'",
        ),
        (
            "License server machine is down or not responding.\nSee the system administrator",
            "FlexNet -96 'License server machine is down or not responding'",
        ),
        ("FLEXnet Licensing error:-97,121", "FlexNet -97 'The desired vendor daemon is down'"),
        # RLM
        (
            "RLM error: License server does not support this product (-18)",
            "RLM 'License server does not support this product'",
        ),
        ("ERROR: All licenses in use (-22)", "RLM 'All licenses in use'"),
        # LM-X
        (
            "LM-X Error: No licenses available for feature 'CFD_SOLVER'",
            "LM-X 'LM-X Error: No licenses available'",
        ),
        (
            "LM-X: could not connect to license server 6200@lmx01",
            "LM-X 'LM-X: could not connect'",
        ),
        # OLicense
        (
            "[OLicense] Failed to check out feature 'CAD_PRO': license not available",
            "OLicense 'OLicense] Failed to check out feature 'CAD_PRO': license not available'",
        ),
        # DSLS
        (
            "DSLS license request for feature 'ABAQUS' denied",
            "DSLS 'DSLS license request for feature 'ABAQUS' denied'",
        ),
        (
            "DSLicSrv: License server dsls01:4085 is not reachable",
            "DSLS 'DSLicSrv: License server dsls01:4085 is not reachable'",
        ),
        # LS-DYNA (LSTC license server)
        (
            " *** LS-DYNA: all licenses are in use, retrying",
            "LS-DYNA 'LS-DYNA: all licenses are in use'",
        ),
        (
            "LSTC license server lsdyna01 is down",
            "LS-DYNA 'LSTC license server lsdyna01 is down'",
        ),
        # Any vendor
        ("Error: license not available", "license 'license not available'"),
        ("No licenses available for solver", "license 'No licenses available'"),
    ],
)
def test_each_vendors_license_errors_are_recognised(output: str, rule: str) -> None:
    found = search(output)

    assert found is not None
    assert found.rule == rule


@pytest.mark.parametrize(
    "output",
    [
        "License checkout successful: abaqus (5 tokens)",
        "Licensed to: ACME Corp, 4 users",
        "FlexNet Licensing error:-10,32. License has expired",  # does not heal by requeueing
        "FlexNet Licensing error:-8,544. Invalid license key",
        "Segmentation fault (core dumped)",
        "",
        "\x00\x01\xff" * 1000,
    ],
)
def test_other_failures_are_not_license_failures(output: str) -> None:
    assert search(output) is None


def test_the_last_license_error_is_the_one_reported() -> None:
    output = "All licenses in use\nretrying...\nFlexNet Licensing error:-96,7\nexit 1\n"

    found = search(output)

    assert found is not None and found.rule.startswith("FlexNet -96")
    assert found.line == "FlexNet Licensing error:-96,7"


def test_quotes_are_one_short_printable_line() -> None:
    found = search("\x1b[31mlicense not available\x07 " + "x" * 500)

    assert found is not None
    assert found.line.isprintable() and len(found.line) == MAX_QUOTE


def test_an_admin_pattern_later_in_the_output_wins_and_names_its_rule() -> None:
    extra = [(LicenseError("rule abaqus", "no seat"), re.compile("no seat", re.IGNORECASE))]
    output = "All licenses in use\nretry\nPower: No seat free\nbye\n"

    found = search(output, extra)

    assert found is not None
    assert (found.rule, found.line) == ("rule abaqus 'No seat'", "Power: No seat free")
    assert search("Power: no seat\nAll licenses in use", extra).rule == "RLM 'All licenses in use'"
