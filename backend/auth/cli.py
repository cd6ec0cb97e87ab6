"""`lm-backend clients ...` and `lm-backend users ...`: the built-in issuer's clients and people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from backend.auth.clients import ClientError, create_client, delete_client, list_clients
from backend.auth.people import (
    PersonError,
    create_person,
    delete_person,
    list_people,
    set_password,
)
from backend.extensions import db
from lm_common.facts import UnknownPermissionError

clients_cli = AppGroup("clients", help="OAuth clients of the built-in token issuer.")


Command = TypeVar("Command", bound=Callable[..., None])
users_cli = AppGroup("users", help="People who log in with lm-cli login (built-in issuer).")


def permissions_option(who: str) -> Callable[[Command], Command]:
    """`--permissions P [P ...]`: click options take one value each, so the words after it
    arrive as the `more_permissions` argument; both are joined by `permission_names`."""

    def decorate(command: Command) -> Command:
        command = click.argument("more_permissions", nargs=-1, metavar="")(command)
        return click.option(
            "--permissions",
            required=True,
            multiple=True,
            metavar="PERMISSION [PERMISSION]...",
            help=f"What the {who} may do, e.g. license-manager:job:read license-manager:admin.",
        )(command)

    return decorate


def permission_names(permissions: tuple[str, ...], more_permissions: tuple[str, ...]) -> list[str]:
    values = (*permissions, *more_permissions)
    return [permission for value in values for permission in value.split()]


def echo_records(records: list[dict[str, Any]], as_json: bool, *columns: str) -> None:
    """A JSON list, or one tab-separated line per record of `columns` (lists space-separated)."""
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for record in records:
        cells = (record[column] for column in columns)
        click.echo("\t".join(" ".join(c) if isinstance(c, list) else str(c) for c in cells))


@clients_cli.command("create")
@click.option("--name", required=True, help="Who uses the client, e.g. the cluster's name.")
@permissions_option("client")
@click.option("--client-id", help="Client id (default: the name); a cluster's cluster_client_id.")
@click.option("--json", "as_json", is_flag=True, help="Print {client_id, client_secret} as JSON.")
def create_command(
    name: str,
    permissions: tuple[str, ...],
    more_permissions: tuple[str, ...],
    client_id: str | None,
    as_json: bool,
) -> None:
    """Create a client and print its id and secret (the secret is shown only once)."""
    names = permission_names(permissions, more_permissions)
    with click_errors(ClientError, UnknownPermissionError):
        created = create_client(db.session, name=name, permissions=names, client_id=client_id)
    if as_json:
        click.echo(
            json.dumps({"client_id": created.client_id, "client_secret": created.client_secret})
        )
    else:
        click.echo(f"client_id:     {created.client_id}")
        click.echo(f"client_secret: {created.client_secret}")
        click.echo("Store the secret now: it cannot be shown again.", err=True)


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_command(as_json: bool) -> None:
    """List clients with their permissions (never their secrets)."""
    clients = [
        {
            "client_id": client.client_id,
            "name": client.name,
            "permissions": client.permissions.split(),
            "created_at": client.created_at.isoformat(),
        }
        for client in list_clients(db.session)
    ]
    echo_records(clients, as_json, "client_id", "name", "permissions")


@clients_cli.command("delete")
@click.argument("client_id")
def delete_command(client_id: str) -> None:
    """Delete a client; its tokens stop being accepted within LM_CLIENT_RECHECK seconds."""
    with click_errors(ClientError):
        delete_client(db.session, client_id)
    click.echo(f"deleted client {client_id}")


@contextmanager
def click_errors(*errors: type[Exception]) -> Iterator[None]:
    """The refusals `errors` stand for, as click's one-line error (exit status 1)."""
    try:
        yield
    except errors as error:
        raise click.ClickException(str(error)) from None


def read_password(confirm: bool) -> str:
    """Prompted (hidden, twice) on a terminal; else the first line of stdin, for scripts."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on stdin (give it as the first line)")
    return password


@users_cli.command("create")
@click.option("--name", required=True, help="The person's login name, e.g. alice.")
@permissions_option("person")
def create_user_command(
    name: str, permissions: tuple[str, ...], more_permissions: tuple[str, ...]
) -> None:
    """Create a person; the password is prompted for, or read from stdin's first line."""
    names = permission_names(permissions, more_permissions)
    with click_errors(PersonError, UnknownPermissionError):
        create_person(db.session, name=name, password=read_password(True), permissions=names)
    click.echo(f"created person {name}")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_users_command(as_json: bool) -> None:
    """List people with their permissions (never their password hashes)."""
    people = [
        {
            "name": person.name,
            "permissions": person.permissions.split(),
            "created_at": person.created_at.isoformat(),
        }
        for person in list_people(db.session)
    ]
    echo_records(people, as_json, "name", "permissions")


@users_cli.command("delete")
@click.argument("name")
def delete_user_command(name: str) -> None:
    """Delete a person: their refresh tokens stop working; access tokens expire within the hour."""
    with click_errors(PersonError):
        delete_person(db.session, name)
    click.echo(f"deleted person {name}")


@users_cli.command("set-password")
@click.argument("name")
def set_password_command(name: str) -> None:
    """Give a person a new password (prompted, or stdin's first line)."""
    with click_errors(PersonError):
        set_password(db.session, name, read_password(True))
    click.echo(f"changed the password of {name}")
