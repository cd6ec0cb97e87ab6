"""POST, GET /lm/features; GET, PUT, DELETE /lm/features/{id}; PUT /lm/features/by_client_id."""

from datetime import datetime, timedelta

import pytest

from tests.backend.catalog import add_booking
from tests.backend.pools import add_configuration

AGENT_REPORT = "license-manager:feature:update"


@pytest.fixture
def site(catalog):
    """A configuration of cluster-a and the product abaqus: ids to attach features to."""
    return {
        "config_id": catalog.configuration("site", cluster_client_id="cluster-a")["id"],
        "product_id": catalog.product("abaqus")["id"],
    }


def test_create_shows_product_and_availability(client, auth_headers, site):
    body = {"name": "abaqus", **site, "reserved": 50}
    created = client.post(
        "/lm/features", json=body, headers=auth_headers("license-manager:feature:create")
    )
    assert created.status_code == 201
    assert created.json == {
        "id": created.json["id"],
        "name": "abaqus",
        "product": {"id": site["product_id"], "name": "abaqus"},
        "config_id": site["config_id"],
        "reserved": 50,
        "total": 0,
        "used": 0,
        "booked": 0,
        "available": 0,
        "pool": {"total": None, "used": None, "reserved": 50},
        "reported_at": None,
        "report_status": None,
        "report_interval": None,
    }


def test_duplicate_feature_of_a_configuration_is_a_conflict(client, auth_headers, catalog, site):
    catalog.feature(name="cae", **site)
    response = client.post("/lm/features", json={"name": "cae", **site}, headers=auth_headers())
    assert response.status_code == 409
    assert "'cae' of product 'abaqus'" in response.json["message"]
    # The same name under another product is another feature.
    other = catalog.product("ansys")
    assert catalog.feature(site["config_id"], other["id"], "cae")["product"]["name"] == "ansys"


@pytest.mark.parametrize("field", ["config_id", "product_id"])
def test_unknown_references_are_refused_by_field(client, auth_headers, site, field):
    body = {"name": "cae", **site, field: 4242}
    response = client.post("/lm/features", json=body, headers=auth_headers())
    assert response.status_code == 422
    assert response.json["errors"]["json"][field][0].endswith("with id 4242.")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reserved": -1}, "reserved"),
        ({"reserved": 10**30}, "reserved"),
        ({"total": "100"}, "total"),
        ({"used": True}, "used"),
        ({"booked": 3}, "booked"),
        ({"name": "\x00"}, "name"),
    ],
)
def test_invalid_features_are_refused(client, auth_headers, site, change, field):
    body = {"name": "cae", **site, **change}
    response = client.post("/lm/features", json=body, headers=auth_headers())
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_update_reserved(client, auth_headers, catalog, site):
    catalog.feature(**site)
    report = [{"product_name": "abaqus", "feature_name": "abaqus", "total": 100, "used": 0}]
    [feature] = client.put("/lm/features/by_client_id", json=report, headers=auth_headers()).json
    url = f"/lm/features/{feature['id']}"
    updated = client.put(url, json={"reserved": 30}, headers=auth_headers())
    assert updated.status_code == 200
    assert updated.json == {
        **feature,
        "reserved": 30,
        "available": 70,
        "pool": {"total": 100, "used": 0, "reserved": 30},
    }


def test_a_feature_never_reported_has_nothing_available(client, auth_headers, catalog, site):
    """`available` is what the booking rule would grant: nothing without a fresh report."""
    feature = catalog.feature(**site, total=100)
    assert (feature["available"], feature["pool"]["total"]) == (0, None)


def test_update_to_unknown_product_is_refused(client, auth_headers, catalog, site):
    feature = catalog.feature(**site)
    url = f"/lm/features/{feature['id']}"
    response = client.put(url, json={"product_id": 999}, headers=auth_headers())
    assert response.status_code == 422
    assert client.get(url, headers=auth_headers()).json == feature


def test_delete_removes_the_bookings_on_it(app, client, auth_headers, catalog, site):
    feature = catalog.feature(**site, total=10)
    add_booking(app, feature["id"], 2)
    url = f"/lm/features/{feature['id']}"
    assert client.delete(url, headers=auth_headers()).status_code == 204
    assert client.get(url, headers=auth_headers()).status_code == 404
    assert client.get("/lm/bookings", headers=auth_headers()).json == []


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_feature_is_404(client, auth_headers, method):
    response = getattr(client, method)("/lm/features/5", json={}, headers=auth_headers())
    assert response.status_code == 404
    assert response.json["message"] == "No feature with id 5."


def test_booked_counts_every_cluster_on_the_pool(app, client, auth_headers):
    """Two clusters naming the same license server share its tokens."""
    numbers = {"total": 100, "used": 20, "reserved": 10}
    mine = add_configuration(app, "cluster-a", {"abaqus.abaqus": numbers})["abaqus.abaqus"]
    theirs = add_configuration(app, "cluster-b", {"abaqus.abaqus": numbers})["abaqus.abaqus"]
    elsewhere = add_configuration(
        app, "cluster-c", {"abaqus.abaqus": numbers}, servers=[("other", 1)]
    )["abaqus.abaqus"]
    add_booking(app, mine, 15, cluster="cluster-a")
    add_booking(app, theirs, 25, cluster="cluster-b")
    add_booking(app, elsewhere, 5, cluster="cluster-c")

    shown = client.get(f"/lm/features/{mine}", headers=auth_headers()).json
    assert (shown["booked"], shown["available"]) == (40, 30)
    listed = {f["id"]: f for f in client.get("/lm/features", headers=auth_headers()).json}
    assert (listed[theirs]["booked"], listed[theirs]["available"]) == (40, 30)
    assert (listed[elsewhere]["booked"], listed[elsewhere]["available"]) == (5, 65)


def test_available_is_never_negative(app, client, auth_headers):
    ids = add_configuration(app, "cluster-a", {"abaqus.abaqus": {"total": 10, "used": 12}})
    shown = client.get(f"/lm/features/{ids['abaqus.abaqus']}", headers=auth_headers()).json
    assert shown["available"] == 0


def report(client, auth_headers, items, cluster="cluster-a"):
    return client.put(
        "/lm/features/by_client_id",
        json=items,
        headers=auth_headers(AGENT_REPORT, client_id=cluster),
    )


def test_report_matches_names_case_insensitively_and_stamps_it(client, auth_headers, catalog, site):
    feature = catalog.feature(**site, name="CAE", reserved=5)
    before = datetime.now().astimezone()
    response = report(
        client,
        auth_headers,
        [{"product_name": "ABAQUS", "feature_name": "cae", "total": 100, "used": 40}],
    )
    assert response.status_code == 200
    [updated] = response.json
    assert updated["id"] == feature["id"]
    assert (updated["total"], updated["used"], updated["available"]) == (100, 40, 55)
    assert updated["report_status"] == "ok"
    reported_at = datetime.fromisoformat(updated["reported_at"])
    assert before <= reported_at <= before + timedelta(minutes=1)


def test_a_report_keeps_the_interval_its_agent_states(client, auth_headers, catalog, site):
    catalog.feature(**site, name="cae")
    read = {"product_name": "abaqus", "feature_name": "cae", "total": 10, "used": 1}

    [updated] = report(client, auth_headers, [{**read, "interval": 30}]).json
    assert updated["report_interval"] == 30
    [updated] = report(client, auth_headers, [read]).json
    assert updated["report_interval"] is None, "a report stating none: the default applies"


def test_unreachable_report_keeps_the_last_counts(client, auth_headers, catalog, site):
    catalog.feature(**site, name="cae")
    ok = {"product_name": "abaqus", "feature_name": "cae", "total": 100, "used": 40}
    report(client, auth_headers, [ok])
    unreachable = {"product_name": "abaqus", "feature_name": "cae", "status": "unreachable"}
    [updated] = report(client, auth_headers, [unreachable]).json
    assert (updated["total"], updated["used"], updated["report_status"]) == (
        100,
        40,
        "unreachable",
    )


def test_report_only_touches_the_callers_cluster(client, auth_headers, catalog, site):
    catalog.feature(**site, name="cae")
    other = catalog.configuration("site", cluster_client_id="cluster-b")
    theirs = catalog.feature(other["id"], site["product_id"], "cae")
    report(
        client,
        auth_headers,
        [{"product_name": "abaqus", "feature_name": "cae", "total": 9, "used": 9}],
    )
    url = f"/lm/features/{theirs['id']}"
    assert client.get(url, headers=auth_headers()).json == theirs


def test_unknown_names_are_all_named_and_nothing_is_written(client, auth_headers, catalog, site):
    feature = catalog.feature(**site, name="cae")
    response = report(
        client,
        auth_headers,
        [
            {"product_name": "abaqus", "feature_name": "cae", "total": 9, "used": 1},
            {"product_name": "abaqus", "feature_name": "explicit", "total": 9, "used": 1},
            {"product_name": "ansys", "feature_name": "cfd", "total": 9, "used": 1},
        ],
    )
    assert response.status_code == 404
    assert response.json["errors"] == {"unknown": ["abaqus.explicit", "ansys.cfd"]}
    assert "abaqus.explicit, ansys.cfd" in response.json["message"]
    assert client.get(f"/lm/features/{feature['id']}", headers=auth_headers()).json == feature


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([{"product_name": "abaqus", "feature_name": "cae"}], "total"),
        ([{"product_name": "abaqus", "feature_name": "cae", "total": 1, "used": -1}], "used"),
        (
            [{"product_name": "a", "feature_name": "c", "total": 1, "used": 0, "status": "down"}],
            "status",
        ),
        ({"product_name": "abaqus"}, "_schema"),
        (
            [{"product_name": "a", "feature_name": "c", "status": "unreachable", "interval": 0}],
            "interval",
        ),
        (
            [{"product_name": "a", "feature_name": "c", "status": "unreachable", "interval": "6"}],
            "interval",
        ),
    ],
)
def test_malformed_reports_are_refused(client, auth_headers, body, problem):
    response = report(client, auth_headers, body)
    assert response.status_code == 422
    assert problem in str(response.json["errors"]["json"])


def test_report_needs_the_feature_update_permission(client, auth_headers):
    response = client.put(
        "/lm/features/by_client_id",
        json=[],
        headers=auth_headers("license-manager:feature:read"),
    )
    assert response.status_code == 403
