"""`lm-cli login`, `lm-cli show-token` and `lm-cli logout`: a person's own session."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cli import output
from cli.api import CliError
from cli.session import (
    DeviceLogin,
    Issuer,
    StoredLogin,
    TokenFile,
    logout,
    token_claims,
)
from lm_common.facts import DEFAULT_CLI_CLIENT_ID


def login(args: argparse.Namespace) -> str:
    """Device login at the issuer (the API's own, or --issuer-url), then store the tokens."""
    issuer = Issuer(args.issuer_url or args.url, args.timeout)
    flow = DeviceLogin(
        issuer,
        api_url=args.url,
        client_id=args.cli_client_id,
        scope=args.scope,
        say=lambda text: print(text, flush=True),
    )
    session = flow.run()
    store = TokenFile()
    store.save(session)
    claims = token_claims(session.access_token)
    who = claims.get("preferred_username") or claims.get("name") or claims.get("sub")
    as_whom = f" as {who}" if who else ""
    return f"Logged in{as_whom} to {args.url}; token stored in {store.path}"


def show_token(args: argparse.Namespace) -> str:
    """The stored access token (renewed first when expired), or its claims with --decode."""
    login = StoredLogin.of(TokenFile(), args.url, args.timeout)
    if login is None:
        where = f" to {args.url}" if args.url else ""
        raise CliError(f"not logged in{where}: run lm-cli login")
    token = login.token()
    if not args.decode:
        return token
    claims = token_claims(token)
    if not claims:
        raise CliError("the access token is not a JWT: it has no claims to show")
    return output.as_json(claims)


def log_out(args: argparse.Namespace) -> str:
    return logout(TokenFile(), args.timeout)


def add_account_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    """The three commands of a person's session; they need no token of their own."""
    login_parser = commands.add_parser(
        "login",
        parents=[connection],
        help="log in through your browser (prints a URL and a code)",
    )
    login_parser.add_argument(
        "--cli-client-id",
        default=os.environ.get("LM_CLI_CLIENT_ID") or DEFAULT_CLI_CLIENT_ID,
        help="the issuer's client id for lm-cli (LM_CLI_CLIENT_ID, default "
        f"{DEFAULT_CLI_CLIENT_ID})",
    )
    login_parser.add_argument(
        "--scope",
        default=os.environ.get("LM_LOGIN_SCOPE") or None,
        help="scopes to ask an external provider for (LM_LOGIN_SCOPE)",
    )
    show_parser = commands.add_parser(
        "show-token", parents=[connection], help="print your access token"
    )
    show_parser.add_argument("--decode", action="store_true", help="print the token's claims")
    logout_parser = commands.add_parser(
        "logout", parents=[connection], help="log out: remove (and revoke) your stored tokens"
    )
    for parser, handler in (
        (login_parser, login),
        (show_parser, show_token),
        (logout_parser, log_out),
    ):
        parser.set_defaults(account=handler, parser=parser, resource=None)
