# PYTHON_ARGCOMPLETE_OK  (argcomplete: this module answers shell completion requests)
"""`lm-cli` entry point: argparse commands built from the resource table, one handler per action."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from cli import output
from cli.account import add_account_commands, log_out, show_token
from cli.api import ApiClient, CliError, token_source
from cli.resources import ACTION_ALIASES, RESOURCES, Resource, positive_int
from cli.session import StoredLogin, TokenFile
from cli.usage import add_usage_action
from cli.why import add_why_action

DEFAULT_TIMEOUT = 30
SORT_ORDERS = ("ascending", "descending")

Handler = Callable[[ApiClient, argparse.Namespace], str]


def api_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// address")
    return text.rstrip("/")


def add_connection_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """Connection flags, accepted before and after the command.

    The copies after the command default to SUPPRESS so they never overwrite a value given
    before it, and stay out of the commands' help (only --json is listed there).
    """
    env = os.environ.get
    options: list[tuple[str, dict[str, Any]]] = [
        (
            "--url",
            {"type": api_url, "default": env("LM_API_URL"), "help": "API address (LM_API_URL)"},
        ),
        ("--token", {"default": env("LM_TOKEN"), "help": "bearer token (LM_TOKEN)"}),
        (
            "--client-id",
            {
                "default": env("LM_CLIENT_ID"),
                "help": "OAuth client id, traded for a token when no token is given (LM_CLIENT_ID)",
            },
        ),
        (
            "--client-secret",
            {
                "default": env("LM_CLIENT_SECRET"),
                "help": "secret of --client-id (LM_CLIENT_SECRET)",
            },
        ),
        (
            "--issuer-url",
            {
                "type": api_url,
                "default": env("LM_ISSUER_URL"),
                "help": "OIDC issuer handing out tokens, when not the API itself (LM_ISSUER_URL)",
            },
        ),
        (
            "--timeout",
            {
                "type": positive_int,
                "default": DEFAULT_TIMEOUT,
                "help": f"seconds to wait for an answer (default {DEFAULT_TIMEOUT})",
            },
        ),
    ]
    group = parser.add_argument_group("connection (flags win over the environment)")
    for flag, settings in options:
        if after_command:
            settings = {**settings, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
        group.add_argument(flag, **settings)
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if after_command else False,
        help="print the API's JSON instead of a table",
    )


def payload(resource: Resource, args: argparse.Namespace) -> dict[str, Any]:
    """The create/update body: only the fields given on the command line."""
    values = {field.key: getattr(args, field.key) for field in resource.fields}
    return {key: value for key, value in values.items() if value is not None}


def named_record(args: argparse.Namespace) -> tuple[str, str]:
    """The URL of the record named on the command line (by id or alternate key), and its name."""
    resource: Resource = args.resource
    alternate = resource.alternate_key
    value = getattr(args, alternate.key, None) if alternate else None
    if alternate is not None and value is not None:
        path = alternate.path.format(quote(value, safe=""))
        return path, f"{resource.singular} with {alternate.flag[2:]} {value}"
    record_id = args.id or args.id_argument
    return f"{resource.path}/{record_id}", f"{resource.singular} {record_id}"


def render(args: argparse.Namespace, item: Any) -> str:
    return output.as_json(item) if args.json else output.record(args.resource, item)


def list_records(client: ApiClient, args: argparse.Namespace) -> str:
    params = {
        name: getattr(args, name)
        for name in ("search", "sort_field", "sort_order", "page", "page_size")
        if getattr(args, name) is not None
    }
    page = client.list_page(args.resource.path, params)
    if args.json:
        return output.as_json(page.items)
    return output.listing(args.resource, page.items, page.pagination)


def show_record(client: ApiClient, args: argparse.Namespace) -> str:
    path, _ = named_record(args)
    return render(args, client.get(path))


def create_record(client: ApiClient, args: argparse.Namespace) -> str:
    return render(args, client.post(args.resource.path, payload(args.resource, args)))


def update_record(client: ApiClient, args: argparse.Namespace) -> str:
    path, _ = named_record(args)
    return render(args, client.put(path, payload(args.resource, args)))


def delete_record(client: ApiClient, args: argparse.Namespace) -> str:
    path, name = named_record(args)
    client.delete(path)
    return "" if args.json else f"deleted {name}"


def show_health(client: ApiClient, args: argparse.Namespace) -> str:
    health = client.get("/health")
    if args.json:
        return output.as_json(health)
    return f"status: {health.get('status')}, database: {health.get('database')}"


HANDLERS: dict[str, Handler] = {
    "list": list_records,
    "get-one": show_record,
    "create": create_record,
    "update": update_record,
    "delete": delete_record,
}


ACTION_HELP = {
    "list": "list {1}",
    "get-one": "show one {0}",
    "create": "create a {0}",
    "update": "change a {0}",
    "delete": "delete a {0}",
}


def add_record_selector(parser: argparse.ArgumentParser, resource: Resource) -> None:
    """Exactly one of `--id N`, a bare `N` (the earlier form) and the alternate key, if any."""
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--id", type=positive_int, help=f"{resource.singular} id")
    choice.add_argument(
        "id_argument", type=positive_int, nargs="?", metavar="ID", help="the same as --id"
    )
    if resource.alternate_key is not None:
        choice.add_argument(resource.alternate_key.flag, help=resource.alternate_key.help)


def add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", help="case-insensitive text to look for in the text fields")
    parser.add_argument("--sort-field", help="field to sort by (the API lists the valid ones)")
    parser.add_argument("--sort-order", choices=SORT_ORDERS)
    parser.add_argument("--page", type=positive_int, help="page number, from 1")
    parser.add_argument("--page-size", type=positive_int, help="records per page")


def add_field_options(parser: argparse.ArgumentParser, resource: Resource, *, create: bool) -> None:
    for field in resource.fields:
        parser.add_argument(
            field.flag,
            *field.aliases,
            dest=field.key,
            type=field.type,
            choices=field.choices,
            metavar=field.name.rsplit("-", 1)[-1].upper() if field.choices else None,
            required=create and field.required,
            help=f"{field.help}: {', '.join(field.choices)}" if field.choices else field.help,
        )


def add_resource_commands(
    commands: Any, resource: Resource, connection: argparse.ArgumentParser
) -> None:
    """`lm-cli <resource> <action> ...` for every action the resource offers."""
    resource_parser = commands.add_parser(resource.command, help=f"manage {resource.plural}")
    actions = resource_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in resource.actions:
        parser = actions.add_parser(
            action,
            aliases=ACTION_ALIASES.get(action, ()),
            parents=[connection],
            help=ACTION_HELP[action].format(resource.singular, resource.plural),
        )
        if action == "list":
            add_list_options(parser)
        else:
            if action != "create":
                add_record_selector(parser, resource)
            if action in ("create", "update"):
                add_field_options(parser, resource, create=action == "create")
        parser.set_defaults(handler=HANDLERS[action], resource=resource, parser=parser)
    if resource.command == "features":
        add_usage_action(actions, connection)
    if resource.command == "jobs":
        add_why_action(actions, connection)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-cli",
        description="Manage the License Manager for Slurm through its REST API.",
        epilog="Connection options may also follow the command. "
        "Example: lm-cli --url http://127.0.0.1:8000 features list --search abaqus",
    )
    add_connection_options(parser, after_command=False)
    connection = argparse.ArgumentParser(add_help=False)
    add_connection_options(connection, after_command=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for resource in RESOURCES:
        add_resource_commands(commands, resource, connection)
    health = commands.add_parser(
        "health", parents=[connection], help="check the API and its database"
    )
    health.set_defaults(handler=show_health, resource=None, parser=health)
    add_account_commands(commands, connection)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot express: combinations of options. Exits 2 like argparse does."""
    parser: argparse.ArgumentParser = args.parser
    # show-token and logout work on the stored session, wherever it was obtained.
    if not args.url and getattr(args, "account", None) not in (show_token, log_out):
        parser.error("no API address: give --url or set LM_API_URL")
    if not args.token and bool(args.client_id) != bool(args.client_secret):
        parser.error("--client-id and --client-secret go together")
    if getattr(args, "action", None) == "update" and not payload(args.resource, args):
        flags = ", ".join(field.flag for field in args.resource.fields)
        parser.error(f"update needs at least one of {flags}")


def connect(args: argparse.Namespace) -> ApiClient:
    """Credentials in this order: --token, client credentials, the stored login of this API."""
    issuer = args.issuer_url or args.url
    tokens = token_source(args.token, issuer, args.client_id, args.client_secret, args.timeout)
    if tokens is not None:
        return ApiClient(args.url, tokens, args.timeout)
    login = StoredLogin.of(TokenFile(), args.url, args.timeout)
    if login is None:
        return ApiClient(args.url, None, args.timeout)
    hint = "your login session has ended: run lm-cli login"
    return ApiClient(args.url, login, args.timeout, unauthorized_hint=hint)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # shell completion (argcomplete): answers, then exits
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    check_arguments(args)
    try:
        account = getattr(args, "account", None)
        text = account(args) if account else args.handler(connect(args), args)
    except CliError as error:
        print(f"lm-cli: error: {error}", file=sys.stderr)
        return 1
    if text:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
