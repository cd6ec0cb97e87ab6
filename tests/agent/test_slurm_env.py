"""SLURM_JOB_LICENSES and SLURM_JOB_NODELIST as slurmctld hands them to the hooks."""

from __future__ import annotations

import re

import pytest

from agent.slurm_env import MalformedValue, first_host, iter_hostlist, parse_job_licenses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abaqus.abaqus@flexlm:5,ansys.cfd@rlm:2", {"abaqus.abaqus": 5, "ansys.cfd": 2}),
        ("abaqus.abaqus@flexlm", {"abaqus.abaqus": 1}),
        ("abaqus.abaqus", {"abaqus.abaqus": 1}),
        ("abaqus.abaqus@flexlm:2,abaqus.abaqus@flexlm:3", {"abaqus.abaqus": 5}),
        ("abaqus.abaqus@flexlm:2,abaqus.abaqus@rlm", {"abaqus.abaqus": 3}),
        (" abaqus.abaqus@flexlm : 4 ", {"abaqus.abaqus": 4}),
        ("star-ccm_2.ccm-pow_er2@flexlm:1", {"star-ccm_2.ccm-pow_er2": 1}),
        ("matlab:3,abaqus.abaqus@flexlm:1", {"abaqus.abaqus": 1}),
        ("matlab:3", {}),
        ("(null)", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_job_licenses_are_booked_as_product_feature_with_summed_counts(
    raw: str | None, expected: dict[str, int]
) -> None:
    assert parse_job_licenses(raw) == expected


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("abaqus.abaqus@flexlm:x", "'x'"),
        ("abaqus.abaqus@flexlm:0", "'0'"),
        ("abaqus.abaqus@flexlm:-2", "'-2'"),
        ("abaqus.abaqus@flexlm:", "''"),
        ("abaqus.abaqus@flexlm:²", "'²'"),
        (",abaqus.abaqus@flexlm:1", "empty"),
        ("abaqus.abaqus@flexlm:1,,", "empty"),
        (":3", "empty"),
    ],
)
def test_malformed_job_licenses_are_rejected_with_the_value_quoted(raw: str, quoted: str) -> None:
    with pytest.raises(MalformedValue) as error:
        parse_job_licenses(raw)
    assert f"SLURM_JOB_LICENSES={raw!r}" in str(error.value)
    assert quoted in str(error.value)


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node01", ["node01"]),
        ("node[01-04,07]", ["node01", "node02", "node03", "node04", "node07"]),
        ("a[1-2],b3", ["a1", "a2", "b3"]),
        ("gpu-[1-3]-ib", ["gpu-1-ib", "gpu-2-ib", "gpu-3-ib"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
        ("x[3],y", ["x3", "y"]),
        ("c1.example.org,c2.example.org", ["c1.example.org", "c2.example.org"]),
    ],
)
def test_hostlists_expand_like_slurm(nodelist: str, hosts: list[str]) -> None:
    assert list(iter_hostlist(nodelist)) == hosts


@pytest.mark.parametrize(
    ("nodelist", "lead"),
    [("node[07-09]", "node07"), ("b[2-3],a1", "b2"), ("(null)", None), ("", None), (None, None)],
)
def test_lead_host_is_the_first_host_of_the_nodelist(
    nodelist: str | None, lead: str | None
) -> None:
    assert first_host(nodelist) == lead


@pytest.mark.parametrize(
    ("nodelist", "reason"),
    [
        ("node[01-03", "never closed"),
        ("node01]", "without '['"),
        ("node[[1-2]]", "nested"),
        ("node[3-1]", "goes down"),
        ("node[a-b]", "bad range"),
        ("node[]", "bad range"),
        ("node1,,node2", "empty host name"),
    ],
)
def test_malformed_hostlists_are_rejected(nodelist: str, reason: str) -> None:
    with pytest.raises(MalformedValue, match=re.escape(reason)):
        list(iter_hostlist(nodelist))
