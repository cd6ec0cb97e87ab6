"""What lm-cli knows about each API resource: one entry here gives a resource all its commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lm_common.facts import SERVER_TYPES

ACTIONS = ("list", "get-one", "create", "update", "delete")
# Earlier spellings still accepted: `show N` for `get-one --id N`.
ACTION_ALIASES = {"get-one": ("show",)}
READ_ONLY = ("list", "get-one")


def bounded_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type that rejects numbers the API would refuse anyway, before any request."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            limit = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"{value} must be {limit}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its error messages
    return parse


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)


def timestamp(value: Any) -> str:
    """ISO timestamps to the second: microseconds only widen a table."""
    try:
        return datetime.fromisoformat(value).isoformat(sep=" ", timespec="seconds")
    except (TypeError, ValueError):
        return str(value)


def server_addresses(servers: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{server['host']}:{server['port']}" for server in servers)


def product_features(features: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{feature['product']['name']}.{feature['name']}" for feature in features)


def booked_quantities(bookings: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{booking['product_feature']}:{booking['quantity']}" for booking in bookings)


@dataclass(frozen=True)
class Column:
    """One column of a table (and one line of `show`): a dotted path into the API's record."""

    header: str
    key: str
    render: Callable[[Any], str] = str

    def cell(self, record: Mapping[str, Any]) -> str:
        value: Any = record
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return "-" if value is None else self.render(value)


@dataclass(frozen=True)
class Field:
    """A create/update option: `--config-id` sets the API's `config_id`."""

    key: str
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    required: bool = True  # on create; on update every field is optional
    name: str = ""  # the option's name when it is not the key's, e.g. license-server-type
    aliases: tuple[str, ...] = ()  # other accepted flags, e.g. --type

    @property
    def flag(self) -> str:
        return "--" + (self.name or self.key.replace("_", "-"))


@dataclass(frozen=True)
class AlternateKey:
    """Another name for one record, e.g. a job by its Slurm job id within the caller's cluster."""

    key: str
    path: str  # with one `{}` for the value
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


@dataclass(frozen=True)
class Resource:
    """Everything the CLI needs to offer list/show/create/update/delete for one API resource."""

    command: str
    singular: str
    path: str
    columns: tuple[Column, ...]
    fields: tuple[Field, ...] = ()
    actions: tuple[str, ...] = ACTIONS
    nested: Mapping[str, str] | None = None  # record key -> command of the resource it holds
    alternate_key: AlternateKey | None = None

    @property
    def plural(self) -> str:
        return self.command.replace("-", " ")

    def noun(self, count: int) -> str:
        return self.singular if count == 1 else self.plural


FEATURE_COLUMNS = (
    Column("ID", "id"),
    Column("PRODUCT", "product.name"),
    Column("FEATURE", "name"),
    Column("CONFIG", "config_id"),
    Column("RESERVED", "reserved"),
    Column("TOTAL", "total"),
    Column("USED", "used"),
    Column("BOOKED", "booked"),
    Column("AVAILABLE", "available"),
    Column("REPORTED", "reported_at", timestamp),
    Column("STATUS", "report_status"),
)

RESOURCES: tuple[Resource, ...] = (
    Resource(
        command="configurations",
        singular="configuration",
        path="/configurations",
        columns=(
            Column("ID", "id"),
            Column("NAME", "name"),
            Column("CLUSTER", "cluster_client_id"),
            Column("TYPE", "type"),
            Column("GRACE TIME", "grace_time"),
            Column("BOOKING MAX AGE", "booking_max_age"),
            Column("LICENSE SERVERS", "license_servers", server_addresses),
            Column("FEATURES", "features", product_features),
        ),
        fields=(
            Field("name", "configuration name, unique within its cluster"),
            Field("cluster_client_id", "OAuth client id of the cluster's agent"),
            Field("grace_time", "seconds a booking is kept at least", non_negative_int),
            Field(
                "booking_max_age",
                "seconds after which a booking whose job shows no checkout is dropped "
                "(default 1800, never below the grace time)",
                non_negative_int,
                required=False,
            ),
            Field(
                "type",
                "license server type",
                choices=SERVER_TYPES,
                name="license-server-type",
                aliases=("--type",),
            ),
        ),
        nested={"license_servers": "license-servers", "features": "features"},
    ),
    Resource(
        command="license-servers",
        singular="license server",
        path="/license_servers",
        columns=(
            Column("ID", "id"),
            Column("CONFIG", "config_id"),
            Column("HOST", "host"),
            Column("PORT", "port"),
        ),
        fields=(
            Field("config_id", "id of the configuration the server serves", positive_int),
            Field("host", "host name or address of the license server"),
            Field("port", "TCP port of the license server", bounded_int(1, 65535)),
        ),
    ),
    Resource(
        command="products",
        singular="product",
        path="/products",
        columns=(Column("ID", "id"), Column("NAME", "name")),
        fields=(Field("name", "product name, e.g. abaqus"),),
    ),
    Resource(
        command="features",
        singular="feature",
        path="/features",
        columns=FEATURE_COLUMNS,
        fields=(
            Field("name", "feature name as the license server reports it"),
            Field("product_id", "id of the feature's product", positive_int),
            Field("config_id", "id of the feature's configuration", positive_int),
            Field(
                "reserved",
                "licenses kept free for desktops (default 0)",
                non_negative_int,
                required=False,
            ),
        ),
    ),
    Resource(
        command="jobs",
        singular="job",
        path="/jobs",
        columns=(
            Column("ID", "id"),
            Column("SLURM JOB", "slurm_job_id"),
            Column("CLUSTER", "cluster_client_id"),
            Column("USER", "username"),
            Column("LEAD HOST", "lead_host"),
            Column("CREATED", "created_at", timestamp),
            Column("BOOKINGS", "bookings", booked_quantities),
        ),
        actions=READ_ONLY,
        nested={"bookings": "bookings"},
        alternate_key=AlternateKey(
            "slurm_job_id", "/jobs/slurm_job_id/{}", "the job's Slurm job id (your cluster's)"
        ),
    ),
    Resource(
        command="bookings",
        singular="booking",
        path="/bookings",
        columns=(
            Column("ID", "id"),
            Column("JOB", "job_id"),
            Column("FEATURE ID", "feature_id"),
            Column("PRODUCT.FEATURE", "product_feature"),
            Column("QUANTITY", "quantity"),
            Column("CREATED", "created_at", timestamp),
        ),
        actions=READ_ONLY,
    ),
    Resource(
        command="license-failures",
        singular="license failure",
        path="/license_failures",
        columns=(
            Column("ID", "id"),
            Column("SLURM JOB", "slurm_job_id"),
            Column("CLUSTER", "cluster_client_id"),
            Column("USER", "username"),
            Column("FEATURE", "feature"),
            Column("ACTION", "action"),
            Column("REQUEUES", "requeue_count"),
            Column("MATCHED", "matched_rule"),
            Column("REASON", "reason"),
            Column("TIME", "created_at", timestamp),
        ),
        actions=READ_ONLY,
    ),
)

RESOURCES_BY_COMMAND = {resource.command: resource for resource in RESOURCES}
