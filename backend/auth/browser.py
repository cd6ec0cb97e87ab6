"""Pieces of a browser login to the built-in issuer, shared by the pages that need one.

The device verification page uses them today; a dashboard login can use the same ones. Forms are
plain HTML (no JavaScript, no files from elsewhere) and protected against cross-site requests by
a double-submit token: a random value in a SameSite=Strict cookie that the form must echo.

A browser session is a person's own token of the built-in issuer in an HttpOnly, SameSite=Strict
cookie: checked like any bearer token (signature, expiry), so every API process accepts it and
it ends when the token does (LM_TOKEN_LIFETIME) or at sign-out.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Response, current_app, g, request

from backend.auth.people import authenticate_person, find_person
from backend.auth.tokens import InvalidTokenError
from backend.extensions import db
from backend.models import Person

CSRF_COOKIE = "lm_csrf"
SESSION_COOKIE = "lm_session"
COOKIE_PATH = "/lm/"
CSRF_FIELD = "csrf_token"
# What the pages may load: their own inline style, nothing else; never shown inside a frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CsrfError(ValueError):
    """The form did not come from our own page (or its cookie expired)."""


def csrf_token() -> str:
    """The token to put in a form: the browser's current one, or a new one set by `finish`."""
    token = request.cookies.get(CSRF_COOKIE) or g.get("lm_new_csrf")
    if not token:
        token = g.lm_new_csrf = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Raise CsrfError unless the posted form echoes the cookie's token."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    posted = request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), posted.encode()):
        raise CsrfError("This form expired or came from another site: reload the page.")


def person_from_form() -> Person | None:
    """The person whose `name` and `password` the form carries, if they match."""
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    if not name or not password:
        return None
    return authenticate_person(db.session, name, password)


def finish(body: str, status: int = 200, **headers: Any) -> Response:
    """An HTML answer with the security headers, and the CSRF cookie when a new one was made."""
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update({**SECURITY_HEADERS, **headers})
    new_token = g.get("lm_new_csrf")
    if new_token:
        response.set_cookie(
            CSRF_COOKIE,
            new_token,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path=COOKIE_PATH,
        )
    return response


def signed_in_person() -> Person | None:
    """The person whose session cookie holds a valid token of theirs (and who still exists)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        identity = current_app.extensions["license_manager_auth"].verifier.verify(token)
    except InvalidTokenError:
        return None
    return find_person(db.session, identity.person) if identity.person else None


def sign_in(response: Response, person: Person) -> None:
    """Start the person's browser session: their token in the session cookie."""
    auth = current_app.extensions["license_manager_auth"]
    token = auth.issuer.issue_for_person(
        person.name, auth.settings.cli_client_id, person.permissions.split()
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=auth.issuer.lifetime,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path=COOKIE_PATH,
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
