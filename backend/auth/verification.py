"""The verification page of `lm-cli login`: a person logs in and approves (or denies) a code.

Plain HTML served by the API itself (no JavaScript, nothing from elsewhere), rate limited per
client address, CSRF protected. Only with the built-in issuer: an external provider has its own.
"""

from __future__ import annotations

import http

from flask import Blueprint, Response, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded

from backend.auth.browser import (
    CsrfError,
    check_csrf,
    csrf_token,
    finish,
    person_from_form,
    sign_in,
    sign_out,
    signed_in_person,
)
from backend.auth.device import (
    VERIFICATION_PATH,
    UserCodeError,
    answer_login,
    normalize_user_code,
    pending_login,
)
from backend.extensions import limiter

blp = Blueprint("verification", __name__, template_folder="templates")


def _page(
    status: int = 200,
    *,
    error: str = "",
    outcome: str = "",
    name: str = "",
    signed_in: str | None = None,
) -> Response:
    """The page; `signed_in` names the person of the browser session (default: the cookie's)."""
    if signed_in is None:
        person = signed_in_person()
        signed_in = person.name if person else ""
    user_code = normalize_user_code(request.values.get("user_code", ""))
    body = render_template(
        "device.html",
        action=VERIFICATION_PATH,
        user_code=user_code,
        name=name,
        signed_in=signed_in,
        error=error,
        outcome=outcome,
        csrf_token=csrf_token(),
    )
    return finish(body, status)


def _builtin_issuer_only() -> Response | None:
    external = current_app.config["LM_SETTINGS"].oidc_issuer
    if external:
        message = f"People log in at {external}: this API's own login is disabled."
        return _page(http.HTTPStatus.NOT_FOUND, error=message)
    return None


@blp.get(VERIFICATION_PATH)
def show() -> Response:
    """The form, with the code filled in when lm-cli's complete URL was followed."""
    return _builtin_issuer_only() or _page()


@blp.post(VERIFICATION_PATH)
@limiter.limit(lambda: current_app.config["LM_SETTINGS"].login_rate_limit)
def submit() -> Response:
    """Check the form, the code and the password; record the person's answer."""
    refused = _builtin_issuer_only()
    if refused:
        return refused
    name = request.form.get("name", "").strip()
    decision = request.form.get("decision")
    try:
        check_csrf()
        if decision == "sign-out":
            answer = _page(signed_in="")
            sign_out(answer)
            return answer
        pending_login(request.form.get("user_code", ""))
    except (CsrfError, UserCodeError) as error:
        return _page(http.HTTPStatus.BAD_REQUEST, error=str(error), name=name)
    # A password logs in (again); without one, the browser's session stands for the person.
    by_password = bool(request.form.get("password"))
    person = person_from_form() if by_password else signed_in_person()
    if person is None:
        return _page(http.HTTPStatus.UNAUTHORIZED, error="Wrong name or password.", name=name)
    approved = decision == "approve"
    answer_login(request.form["user_code"], person, approved)
    if approved:
        outcome = f"Approved: lm-cli is now logged in as {person.name}. You can close this page."
    else:
        outcome = "Denied: lm-cli was not logged in. You can close this page."
    answer = _page(outcome=outcome, signed_in=person.name)
    if by_password:
        sign_in(answer, person)
    return answer


@blp.errorhandler(RateLimitExceeded)
def too_many(error: RateLimitExceeded) -> Response:
    message = f"Too many attempts from your address ({error.description}): wait a minute."
    return _page(http.HTTPStatus.TOO_MANY_REQUESTS, error=message)
