"""`lm-backend clients create|list|delete`: manage the built-in issuer's OAuth clients."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from backend.auth.clients import ClientError, create_client, delete_client, list_clients
from backend.auth.permissions import UnknownPermissionError
from backend.extensions import db

clients_cli = AppGroup("clients", help="OAuth clients of the built-in token issuer.")


@clients_cli.command("create")
@click.option("--name", required=True, help="Who uses the client, e.g. the cluster's name.")
@click.option(
    "--permissions",
    required=True,
    multiple=True,
    metavar="PERMISSION [PERMISSION]...",
    help="What the client may do, e.g. license-manager:job:create license-manager:job:read.",
)
# Click options take one value each: the words after --permissions arrive as this argument.
@click.argument("more_permissions", nargs=-1, metavar="")
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
    values = (*permissions, *more_permissions)
    names = [permission for value in values for permission in value.split()]
    try:
        created = create_client(db.session, name=name, permissions=names, client_id=client_id)
    except (ClientError, UnknownPermissionError) as error:
        raise click.ClickException(str(error)) from None
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
    if as_json:
        click.echo(json.dumps(clients, indent=2))
        return
    for client in clients:
        click.echo(f"{client['client_id']}\t{client['name']}\t{' '.join(client['permissions'])}")


@clients_cli.command("delete")
@click.argument("client_id")
def delete_command(client_id: str) -> None:
    """Delete a client; tokens it already holds stay valid until they expire."""
    try:
        delete_client(db.session, client_id)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"deleted client {client_id}")
