"""A person's browser login, done over plain HTTP: the demo logs its demo person in this way.

`answer_device_login` fills the API's verification page as a browser would (its CSRF cookie
and token included); `log_in` runs lm-cli's device login with it and stores lm-cli's tokens.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.request
from urllib.parse import urlencode

from cli.session import DeviceLogin, Issuer, Session, TokenFile
from lm_common.facts import DEFAULT_CLI_CLIENT_ID

TIMEOUT = 10


def answer_device_login(
    verification_uri: str, user_code: str, name: str, password: str, decision: str = "approve"
) -> tuple[int, str]:
    """Load the verification page, then post the form; the answer's status and HTML."""
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    query = urlencode({"user_code": user_code})
    with browser.open(f"{verification_uri}?{query}", timeout=TIMEOUT) as page:
        html = page.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if token is None:
        raise RuntimeError(f"{verification_uri} shows no login form")
    form = {
        "csrf_token": token.group(1),
        "user_code": user_code,
        "name": name,
        "password": password,
        "decision": decision,
    }
    try:
        with browser.open(
            verification_uri, data=urlencode(form).encode(), timeout=TIMEOUT
        ) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def log_in(api_url: str, name: str, password: str, store: TokenFile) -> Session:
    """`lm-cli login` as `name`, approved on the API's own page; the tokens land in `store`."""
    flow = DeviceLogin(Issuer(api_url, TIMEOUT), api_url, DEFAULT_CLI_CLIENT_ID, say=lambda _: None)
    codes = flow.begin()
    status, _ = answer_device_login(codes["verification_uri"], codes["user_code"], name, password)
    if status != 200:
        raise RuntimeError(f"the verification page refused {name}'s login: {status}")
    session = flow.wait(codes)
    store.save(session)
    return session
