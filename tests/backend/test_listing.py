"""search, sort_field, sort_order, page and page_size on the list endpoints."""

import json

import pytest


def names(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [row["name"] for row in response.json]


@pytest.fixture
def products(catalog):
    for name in ("Abaqus", "ansys", "lsdyna", "star_ccm", "starccm", "100%cfd"):
        catalog.product(name)


def test_search_is_case_insensitive(client, auth_headers, products):
    response = client.get("/lm/products?search=ABA", headers=auth_headers())
    assert names(response) == ["Abaqus"]


@pytest.mark.parametrize(("term", "expected"), [("star_", ["star_ccm"]), ("0%", ["100%cfd"])])
def test_search_wildcards_are_literal(client, auth_headers, products, term, expected):
    response = client.get("/lm/products", query_string={"search": term}, headers=auth_headers())
    assert names(response) == expected


def test_search_covers_every_text_field(client, auth_headers, catalog):
    catalog.configuration("alpha", cluster_client_id="hpc-north")
    catalog.configuration("beta", cluster_client_id="hpc-south", type="rlm")
    catalog.configuration("gamma", cluster_client_id="hpc-south")
    by_cluster = client.get("/lm/configurations?search=SOUTH", headers=auth_headers())
    assert names(by_cluster) == ["beta", "gamma"]
    by_type = client.get("/lm/configurations?search=rlm", headers=auth_headers())
    assert names(by_type) == ["beta"]


def test_features_search_and_sort_by_product_name(client, auth_headers, catalog):
    config_id = catalog.configuration()["id"]
    for product_name, feature_name in (("ansys", "cfd"), ("abaqus", "standard"), ("lsdyna", "x")):
        product = catalog.product(product_name)
        catalog.feature(config_id, product["id"], feature_name)
    found = client.get("/lm/features?search=ABAQ", headers=auth_headers())
    assert names(found) == ["standard"]
    ordered = client.get("/lm/features?sort_field=product_name", headers=auth_headers())
    assert names(ordered) == ["standard", "cfd", "x"]


def test_sort_ascending_and_descending(client, auth_headers, products):
    ascending = client.get("/lm/products?sort_field=name", headers=auth_headers())
    assert names(ascending) == ["100%cfd", "Abaqus", "ansys", "lsdyna", "star_ccm", "starccm"]
    descending = client.get(
        "/lm/products?sort_field=name&sort_order=descending", headers=auth_headers()
    )
    assert names(descending) == list(reversed(names(ascending)))


@pytest.mark.parametrize(
    ("path", "valid"),
    [
        ("products", "id, name"),
        ("license_servers", "id, host, port, config_id"),
        ("configurations", "id, name, cluster_client_id, grace_time, booking_max_age, type"),
        ("features", "id, name, product_name, config_id, reserved, total, used, reported_at"),
    ],
)
def test_unknown_sort_field_lists_the_valid_ones(client, auth_headers, path, valid):
    response = client.get(f"/lm/{path}?sort_field=color", headers=auth_headers())
    assert response.status_code == 422
    assert response.json["errors"]["query"]["sort_field"] == [
        f"Unknown sort field 'color'; valid sort fields: {valid}."
    ]


def test_unknown_sort_order_is_refused(client, auth_headers):
    response = client.get("/lm/products?sort_order=random", headers=auth_headers())
    assert response.status_code == 422
    assert "sort_order" in response.json["errors"]["query"]


def test_pages_cover_every_row_once_with_metadata(client, auth_headers, catalog):
    for index in range(7):
        catalog.product(f"same-{index}")
    seen = []
    for page in (1, 2, 3):
        response = client.get(
            f"/lm/products?page={page}&page_size=3&sort_field=name&sort_order=descending",
            headers=auth_headers(),
        )
        seen += names(response)
        pagination = json.loads(response.headers["X-Pagination"])
        assert (pagination["total"], pagination["total_pages"], pagination["page"]) == (7, 3, page)
    assert seen == [f"same-{index}" for index in reversed(range(7))]


def test_ties_are_broken_by_id_so_pages_do_not_overlap(client, auth_headers, catalog):
    for cluster in ("c", "a", "b", "d"):
        catalog.configuration("same-name", cluster_client_id=cluster)
    pages = [
        client.get(
            f"/lm/configurations?sort_field=name&page={page}&page_size=2", headers=auth_headers()
        ).json
        for page in (1, 2)
    ]
    clusters = [row["cluster_client_id"] for page in pages for row in page]
    assert clusters == ["c", "a", "b", "d"]


@pytest.mark.parametrize("page", ["10", "99999999999999999999999"])
def test_page_past_the_end_is_empty(client, auth_headers, products, page):
    response = client.get(f"/lm/products?page={page}", headers=auth_headers())
    assert response.status_code == 200
    assert response.json == []
    assert json.loads(response.headers["X-Pagination"])["total"] == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("search=", "search"),
        ("search=%00", "search"),
        (f"search={'x' * 256}", "search"),
    ],
)
def test_bad_list_arguments_are_refused(client, auth_headers, query, field):
    response = client.get(f"/lm/products?{query}", headers=auth_headers())
    assert response.status_code == 422
    assert field in response.json["errors"]["query"]
