"""The booking rule, through the prolog's request (POST /lm/jobs with bookings)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from backend.booking import pool_figures
from tests.backend.pools import add_configuration, report

ABAQUS = "abaqus.abaqus"


def booked(client, auth_headers) -> dict[str, int]:
    """Every cluster's bookings, summed by product_feature."""
    listed = client.get("/lm/bookings", headers=auth_headers()).json
    totals: dict[str, int] = {}
    for booking in listed:
        totals[booking["product_feature"]] = (
            totals.get(booking["product_feature"], 0) + booking["quantity"]
        )
    return totals


def test_grants_up_to_total_minus_used_reserved_and_booked(app, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 20, "used": 5, "reserved": 3}})

    granted = post_job({ABAQUS: 10}, slurm_job_id="1")
    assert granted.status_code == 201
    assert [(b["product_feature"], b["quantity"]) for b in granted.json["bookings"]] == [
        (ABAQUS, 10)
    ]
    assert post_job({ABAQUS: 2}, slurm_job_id="2").status_code == 201

    refused = post_job({ABAQUS: 1}, slurm_job_id="3")
    assert refused.status_code == 409
    assert refused.json["errors"] == {ABAQUS: {"requested": 1, "available": 0}}
    assert "abaqus.abaqus: 1 requested, 0 available" in refused.json["message"]


def test_refusal_names_how_many_are_available(app, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10, "used": 4, "reserved": 3}})

    refused = post_job({ABAQUS: 4})

    assert refused.status_code == 409
    assert refused.json["errors"] == {ABAQUS: {"requested": 4, "available": 3}}


def test_all_or_nothing(app, client, auth_headers, post_job):
    add_configuration(
        app, "cluster-a", {ABAQUS: {"total": 10}, "ansys.cfd": {"total": 4, "used": 2}}
    )

    refused = post_job({ABAQUS: 5, "ansys.cfd": 3})

    assert refused.status_code == 409
    assert refused.json["errors"] == {"ansys.cfd": {"requested": 3, "available": 2}}
    assert client.get("/lm/jobs", headers=auth_headers()).json == []
    assert booked(client, auth_headers) == {}


def test_clusters_naming_the_same_server_share_the_pool(app, client, auth_headers, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}}, servers=[("licserv1", 27000)])
    # Host names are case-insensitive; the configurations may list other mirrors as well.
    add_configuration(
        app,
        "cluster-b",
        {ABAQUS: {"total": 10}},
        servers=[("LICSERV1", 27000), ("licserv2", 27000)],
    )
    add_configuration(app, "cluster-c", {ABAQUS: {"total": 10}}, servers=[("licserv1", 27001)])

    assert post_job({ABAQUS: 7}, cluster="cluster-a").status_code == 201

    refused = post_job({ABAQUS: 4}, cluster="cluster-b")
    assert refused.status_code == 409
    assert refused.json["errors"] == {ABAQUS: {"requested": 4, "available": 3}}
    assert post_job({ABAQUS: 3}, cluster="cluster-b").status_code == 201
    # Another port is another license server: its pool is untouched.
    assert post_job({ABAQUS: 10}, cluster="cluster-c").status_code == 201


def test_mirrors_link_pools_transitively(app, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}}, servers=[("ls1", 1)])
    add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}}, servers=[("ls1", 1), ("ls2", 1)])
    add_configuration(app, "cluster-c", {ABAQUS: {"total": 10}}, servers=[("ls2", 1)])

    assert post_job({ABAQUS: 6}, cluster="cluster-a").status_code == 201

    refused = post_job({ABAQUS: 5}, cluster="cluster-c")
    assert refused.json["errors"] == {ABAQUS: {"requested": 5, "available": 4}}


def test_pool_is_one_product_and_feature(app, post_job):
    add_configuration(
        app,
        "cluster-a",
        {ABAQUS: {"total": 5}, "abaqus.cae": {"total": 5}, "other.abaqus": {"total": 5}},
    )

    assert post_job({ABAQUS: 5}, slurm_job_id="1").status_code == 201
    assert post_job({"abaqus.cae": 5, "other.abaqus": 5}, slurm_job_id="2").status_code == 201


def test_pool_figures_sum_every_clusters_bookings(app, post_job):
    a = add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}}, servers=[("ls", 1)])
    b = add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}}, servers=[("ls", 1)])
    c = add_configuration(app, "cluster-c", {ABAQUS: {"total": 10}}, servers=[("ls", 2)])
    post_job({ABAQUS: 2}, cluster="cluster-a")
    post_job({ABAQUS: 3}, cluster="cluster-b")

    with app.app_context():
        figures = pool_figures([a[ABAQUS], b[ABAQUS], c[ABAQUS], 999_999])

    assert {feature: pool.booked for feature, pool in figures.items()} == {
        a[ABAQUS]: 5,
        b[ABAQUS]: 5,
        c[ABAQUS]: 0,
    }


@pytest.mark.parametrize(
    ("last_report", "reason"),
    [
        ({"status": None}, "the license server has never been reported"),
        ({"status": "unreachable"}, "the license server was unreachable at the last report"),
        (
            {"status": "unparsable"},
            "the license server's output was not understood at the last report",
        ),
        # No interval stated: the agent's default, 60 s; fresh for 3 of them.
        ({"age": timedelta(seconds=181)}, "stale: last report 181 s ago, older than 3 "),
        (
            {"age": timedelta(seconds=16), "report_interval": 5},
            "stale: last report 16 s ago, older than 3 reconcile intervals of 5 s",
        ),
    ],
    ids=["never-reported", "unreachable", "unparsable", "stale", "stale-for-a-fast-agent"],
)
def test_refuses_without_a_recent_good_report(app, post_job, last_report, reason):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 100}})[ABAQUS]
    report(app, feature_id, **last_report)

    refused = post_job({ABAQUS: 1})

    assert refused.status_code == 409
    assert list(refused.json["errors"]) == [ABAQUS]
    refusal = refused.json["errors"][ABAQUS]
    assert refusal["requested"] == 1
    assert refusal["reason"].startswith(reason)


@pytest.mark.parametrize(
    ("age", "interval"), [(170, None), (14, 5), (3500, 1200)], ids=["default", "fast", "slow"]
)
def test_a_report_younger_than_three_of_its_agents_intervals_counts(app, post_job, age, interval):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 100}})[ABAQUS]
    report(app, feature_id, age=timedelta(seconds=age), report_interval=interval)

    assert post_job({ABAQUS: 1}).status_code == 201


def test_how_many_intervals_a_report_stays_fresh_is_a_setting(app, post_job, monkeypatch):
    feature_id = add_configuration(app, "cluster-a", {ABAQUS: {"total": 100}})[ABAQUS]
    report(app, feature_id, age=timedelta(seconds=70), report_interval=60)
    settings = replace(app.config["LM_SETTINGS"], report_fresh_intervals=1)
    monkeypatch.setitem(app.config, "LM_SETTINGS", settings)

    refused = post_job({ABAQUS: 1})

    reason = refused.json["errors"][ABAQUS]["reason"]
    assert reason.startswith("stale: last report 70 s ago, older than 1 reconcile intervals of 60")


def test_untracked_licenses_are_ignored_and_listed(app, client, auth_headers, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})
    # Tracked for another cluster only: still untracked for cluster-a.
    add_configuration(app, "cluster-b", {"ansys.cfd": {"total": 10}})

    granted = post_job({ABAQUS: 2, "ansys.cfd": 5, "comsol.base": 1})

    assert granted.status_code == 201
    assert granted.json["untracked"] == ["ansys.cfd", "comsol.base"]
    assert booked(client, auth_headers) == {ABAQUS: 2}


def test_a_job_of_untracked_licenses_only_passes(app, post_job):
    granted = post_job({"comsol.base": 1})

    assert granted.status_code == 201
    assert granted.json["bookings"] == []
    assert granted.json["untracked"] == ["comsol.base"]


def test_product_feature_matches_case_insensitively(app, post_job):
    add_configuration(app, "cluster-a", {"Abaqus.Standard": {"total": 3}})

    granted = post_job({"ABAQUS.standard": 3})

    assert granted.status_code == 201
    assert granted.json["untracked"] == []
    assert granted.json["bookings"][0]["product_feature"] == "Abaqus.Standard"


def test_repeated_license_in_one_request_is_summed(app, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 5}})

    refused = post_job({ABAQUS: 3, "ABAQUS.abaqus": 3})

    assert refused.json["errors"] == {ABAQUS: {"requested": 6, "available": 5}}


def test_reposting_a_job_replaces_it_and_its_bookings(app, client, auth_headers, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}, "ansys.cfd": {"total": 10}})
    first = post_job({ABAQUS: 8, "ansys.cfd": 1}, slurm_job_id="42")

    # The earlier bookings of the same job do not count against its new request.
    again = post_job({ABAQUS: 9}, slurm_job_id="42")

    assert again.status_code == 201
    jobs = client.get("/lm/jobs", headers=auth_headers()).json
    assert [(job["slurm_job_id"], job["id"]) for job in jobs] == [("42", first.json["id"])]
    assert booked(client, auth_headers) == {ABAQUS: 9}


def test_refused_repost_leaves_the_earlier_record(app, client, auth_headers, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})
    post_job({ABAQUS: 4}, slurm_job_id="42")

    assert post_job({ABAQUS: 11}, slurm_job_id="42").status_code == 409

    assert booked(client, auth_headers) == {ABAQUS: 4}


def test_same_slurm_job_id_on_two_clusters_are_two_jobs(app, client, auth_headers, post_job):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}}, servers=[("ls", 1)])
    add_configuration(app, "cluster-b", {ABAQUS: {"total": 10}}, servers=[("ls", 1)])

    post_job({ABAQUS: 4}, slurm_job_id="7", cluster="cluster-a")
    post_job({ABAQUS: 4}, slurm_job_id="7", cluster="cluster-b")

    assert len(client.get("/lm/jobs", headers=auth_headers()).json) == 2
    assert booked(client, auth_headers) == {ABAQUS: 8}


def test_one_cluster_with_the_feature_twice_books_the_first(app, client, auth_headers, post_job):
    first = add_configuration(app, "cluster-a", {ABAQUS: {"total": 1}}, servers=[("ls", 1)])
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 50}}, servers=[("ls", 2)])

    granted = post_job({ABAQUS: 1})

    assert granted.json["bookings"][0]["feature_id"] == first[ABAQUS]


@pytest.mark.parametrize(
    "request_item",
    [
        {"product_feature": "abaqus", "quantity": 1},
        {"product_feature": ".abaqus", "quantity": 1},
        {"product_feature": "abaqus.", "quantity": 1},
        {"product_feature": " . ", "quantity": 1},
        {"product_feature": "", "quantity": 1},
        {"product_feature": 5, "quantity": 1},
        {"product_feature": ABAQUS, "quantity": 0},
        {"product_feature": ABAQUS, "quantity": -2},
        {"product_feature": ABAQUS, "quantity": "2"},
        {"product_feature": ABAQUS, "quantity": 2.5},
        {"product_feature": ABAQUS, "quantity": 2**31},
        {"product_feature": ABAQUS},
        {"quantity": 1},
        {"product_feature": ABAQUS, "quantity": 1, "extra": True},
    ],
)
def test_malformed_booking_request_is_422(app, client, auth_headers, request_item):
    add_configuration(app, "cluster-a", {ABAQUS: {"total": 10}})

    answer = client.post(
        "/lm/jobs",
        json={"slurm_job_id": "1", "username": "u", "lead_host": "h", "bookings": [request_item]},
        headers=auth_headers(),
    )

    assert answer.status_code == 422
    assert "bookings" in answer.json["errors"]["json"]
