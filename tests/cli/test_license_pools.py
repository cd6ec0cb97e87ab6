"""Configurations, license servers and features through lm-cli, as an admin sets up a pool."""

from __future__ import annotations

from tests.cli.conftest import (
    CliRunner,
    nested_rows,
    report_usage,
    set_up_pool,
    shown_fields,
    table_rows,
)
from tests.live_api import LiveApi


def test_configuration_round_trip(lm_cli: CliRunner):
    created = lm_cli(
        "configurations",
        "create",
        "--name",
        "pool",
        "--cluster-client-id",
        "cluster-a",
        "--grace-time",
        "60",
        "--license-server-type",
        "rlm",
    )
    assert shown_fields(created) == {
        "ID": "1",
        "NAME": "pool",
        "CLUSTER": "cluster-a",
        "TYPE": "rlm",
        "GRACE TIME": "60",
        "BOOKING MAX AGE": "1800",
    }
    updated = lm_cli(
        "configurations", "update", "1", "--grace-time", "300", "--type", "flexlm",
        "--booking-max-age", "3600",
    )  # fmt: skip
    assert shown_fields(updated)["GRACE TIME"] == "300"
    assert shown_fields(updated)["BOOKING MAX AGE"] == "3600"
    assert shown_fields(updated)["TYPE"] == "flexlm"
    assert shown_fields(updated)["NAME"] == "pool"  # fields not given stay as they were

    assert lm_cli("configurations", "delete", "--id", "1").stdout == "deleted configuration 1\n"
    assert lm_cli("configurations", "list").stdout == "no configurations\n"


def test_configuration_show_nests_servers_and_features(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    shown = lm_cli("configurations", "get-one", "--id", "1")
    assert nested_rows(shown, "License servers") == [
        {"ID": "1", "CONFIG": "1", "HOST": "licserv", "PORT": "27000"}
    ]
    [feature] = nested_rows(shown, "Features")
    assert (feature["PRODUCT"], feature["FEATURE"], feature["RESERVED"]) == (
        "abaqus",
        "abaqus",
        "2",
    )

    [row] = table_rows(lm_cli("configurations", "list"))
    assert row["LICENSE SERVERS"] == "licserv:27000"
    assert row["FEATURES"] == "abaqus.abaqus"


def test_features_list_shows_the_pool_usage(live_api: LiveApi, lm_cli: CliRunner):
    set_up_pool(lm_cli)
    [never_reported] = table_rows(lm_cli("features", "list"))
    assert (never_reported["REPORTED"], never_reported["STATUS"]) == ("-", "-")

    report_usage(live_api, total=10, used=3)
    [feature] = table_rows(lm_cli("features", "list", "--search", "abaq"))
    assert {key: feature[key] for key in ("TOTAL", "USED", "RESERVED", "BOOKED", "AVAILABLE")} == {
        "TOTAL": "10",
        "USED": "3",
        "RESERVED": "2",
        "BOOKED": "0",
        "AVAILABLE": "5",
    }
    assert feature["STATUS"] == "ok"

    lowered = lm_cli("features", "update", "1", "--reserved", "4", "--json")
    assert lowered.json()["available"] == 3


def test_features_list_shows_an_output_the_agent_did_not_understand(
    live_api: LiveApi, lm_cli: CliRunner
):
    set_up_pool(lm_cli)
    report_usage(live_api, total=10, used=3)
    report = [{"product_name": "abaqus", "feature_name": "abaqus", "status": "unparsable"}]
    answer = live_api.call("PUT", "/features/by_client_id", live_api.token(), json=report)
    assert answer.status_code == 200, answer.text

    [feature] = table_rows(lm_cli("features", "list"))
    assert (feature["STATUS"], feature["TOTAL"], feature["USED"]) == ("unparsable", "10", "3")


def test_license_server_round_trip_and_duplicate(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    moved = lm_cli("license-servers", "update", "1", "--port", "27001")
    assert shown_fields(moved)["PORT"] == "27001"
    mirror = lm_cli("license-servers", "create", "--config-id", "1", "--host", "mirror")
    assert mirror.returncode == 2  # --port is required before anything is sent
    again = lm_cli(
        "license-servers", "create", "--config-id", "1", "--host", "licserv", "--port", "27001"
    )
    assert again.returncode == 1
    assert again.stderr.startswith("lm-cli: error: 409 Conflict: ")
    assert lm_cli("license-servers", "delete", "--id", "1").returncode == 0
    assert nested_rows(lm_cli("configurations", "show", "1"), "License servers") == []


def test_product_in_use_cannot_be_deleted(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    result = lm_cli("products", "delete", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 409 Conflict: ")
    assert "abaqus-pool" in result.stderr  # says which configuration still uses it
    assert len(result.stderr.splitlines()) == 1


def test_out_of_range_value_names_the_field(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    result = lm_cli("configurations", "update", "1", "--grace-time", "99999999999")
    assert result.returncode == 1
    assert result.stderr.startswith("lm-cli: error: 422 Unprocessable Entity: ")
    assert "grace_time: Must be greater than or equal to 0" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_unknown_reference_is_reported(lm_cli: CliRunner):
    set_up_pool(lm_cli)
    result = lm_cli("features", "create", "--name", "cae", "--product-id", "99", "--config-id", "1")
    assert result.returncode == 1
    assert "product_id" in result.stderr and "99" in result.stderr
    assert len(result.stderr.splitlines()) == 1
