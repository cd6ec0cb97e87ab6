"""Products through lm-cli: the round trip, list options, output formats and API errors."""

from __future__ import annotations

from tests.cli.conftest import CliRunner, footer, table_rows


def create_products(lm_cli: CliRunner, *names: str) -> None:
    for name in names:
        assert lm_cli("products", "create", "--name", name).returncode == 0


def test_product_round_trip(lm_cli: CliRunner):
    created = lm_cli("products", "create", "--name", "abaqus")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == ["ID:   1", "NAME: abaqus"]

    assert table_rows(lm_cli("products", "list")) == [{"ID": "1", "NAME": "abaqus"}]
    assert "NAME: abaqus" in lm_cli("products", "get-one", "--id", "1").stdout

    renamed = lm_cli("products", "update", "1", "--name", "ansys")
    assert renamed.returncode == 0, renamed.stderr
    assert "NAME: ansys" in lm_cli("products", "show", "1").stdout

    deleted = lm_cli("products", "delete", "--id", "1")
    assert (deleted.returncode, deleted.stdout) == (0, "deleted product 1\n")
    assert lm_cli("products", "list").stdout == "no products\n"


def test_json_output_is_the_api_payload(lm_cli: CliRunner):
    created = lm_cli("products", "create", "--name", "abaqus", "--json")
    assert created.json() == {"id": 1, "name": "abaqus"}
    assert lm_cli("products", "list", "--json").json() == [{"id": 1, "name": "abaqus"}]
    assert lm_cli("--json", "products", "show", "1").json() == {"id": 1, "name": "abaqus"}
    assert lm_cli("products", "delete", "1", "--json").stdout == ""


def test_search_sort_and_pages(lm_cli: CliRunner):
    create_products(lm_cli, "abaqus", "ansys", "starccm", "lsdyna", "abaqus-cae")

    found = lm_cli("products", "list", "--search", "ABAQUS")
    assert [row["NAME"] for row in table_rows(found)] == ["abaqus", "abaqus-cae"]

    by_name = lm_cli("products", "list", "--sort-field", "name", "--sort-order", "descending")
    assert [row["NAME"] for row in table_rows(by_name)] == [
        "starccm",
        "lsdyna",
        "ansys",
        "abaqus-cae",
        "abaqus",
    ]

    second = lm_cli("products", "list", "--sort-field", "name", "--page", "2", "--page-size", "2")
    assert [row["NAME"] for row in table_rows(second)] == ["ansys", "lsdyna"]
    assert footer(second) == "page 2 of 3, 5 products in all"

    past_the_end = lm_cli("products", "list", "--page", "9", "--page-size", "2")
    assert past_the_end.stdout == "no products on this page, 5 in all\n"


def test_duplicate_name_is_one_conflict_line(lm_cli: CliRunner):
    create_products(lm_cli, "abaqus")
    result = lm_cli("products", "create", "--name", "abaqus")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "lm-cli: error: 409 Conflict: Product 'abaqus' (id 1) already exists; names are "
        "compared without case. (existing: id=1, name=abaqus)\n"
    )


def test_unknown_id_is_one_not_found_line(lm_cli: CliRunner):
    for action in (["show", "42"], ["update", "42", "--name", "x"], ["delete", "42"]):
        result = lm_cli("products", *action)
        assert result.returncode == 1
        assert result.stderr.startswith("lm-cli: error: 404 Not Found: ")
        assert len(result.stderr.splitlines()) == 1


def test_invalid_field_names_the_field(lm_cli: CliRunner):
    result = lm_cli("products", "create", "--name", "x" * 300)
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 422 Unprocessable Entity: ")
    assert "name: Length must be between 1 and 255." in result.stderr


def test_unknown_sort_field_lists_the_valid_ones(lm_cli: CliRunner):
    result = lm_cli("products", "list", "--sort-field", "colour")
    assert result.returncode == 1
    assert "sort_field: Unknown sort field 'colour'; valid sort fields: id, name." in result.stderr
