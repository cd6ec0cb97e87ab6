"""The application factory: gunicorn serves `backend:create_app()`."""

from __future__ import annotations

import contextlib
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, request, send_from_directory
from flask_smorest import Api, abort
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import auth
from backend import models as _models  # noqa: F401  (registers the tables for Flask-Migrate)
from backend.extensions import DATABASE_RETRY_AFTER, db, migrate
from backend.history import history_cli
from backend.metrics import measure_requests
from backend.resources import BLUEPRINTS
from backend.settings import Settings, sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
API_PREFIX = "/lm"
log = logging.getLogger(__name__)
SWAGGER_UI_STATIC = f"{API_PREFIX}/docs/static/"
# Seconds connecting to the database may take before the request answers 503.
DATABASE_CONNECT_TIMEOUT = 5
# What a lost or refused database connection raises: answered 503, never 500.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for one deployment; settings default to the LM_* environment."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        LM_SETTINGS=settings,
        SQLALCHEMY_DATABASE_URI=sqlalchemy_url(settings.database_url),
        # pre_ping: a connection the database dropped (restart) is replaced before use, so the
        # API recovers by itself when the database is back.
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": DATABASE_CONNECT_TIMEOUT},
        },
        # Werkzeug refuses longer bodies (413) when reading them, chunked ones too.
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="License Manager for Slurm",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_STATIC,
        OPENAPI_SWAGGER_UI_CONFIG={"persistAuthorization": True},
        API_SPEC_OPTIONS={
            "info": {
                "description": "Configurations, license servers, products, features, jobs and "
                "bookings of the License Manager for Slurm. Every endpoint but health needs a "
                "bearer token (Authorize button); each names the permission it requires."
            },
        },
    )
    # Answers keep each schema's field order (`id` first, then the fields as documented) rather
    # than Flask's alphabetical order.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")

    db.init_app(app)
    # Registered after flask-sqlalchemy's teardown, so it runs first (Flask runs them reversed).
    app.teardown_appcontext(_release_session)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    # One Api per app: a module-level one would serve the last app's OpenAPI document to all.
    api = Api(app)
    app.register_error_handler(HTTPException, partial(_json_error, api))
    for error in DATABASE_UNAVAILABLE:
        app.register_error_handler(error, partial(_database_unavailable, api))
    app.before_request(_refuse_large_body)
    auth.init_app(app, api)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=f"{API_PREFIX}{blueprint.url_prefix or ''}")
    app.cli.add_command(history_cli)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        measure_requests(app)
    _register_swagger_ui_files(app)
    if settings.trusted_proxies:
        # Behind TLS-terminating proxies: take scheme, host and client from their X-Forwarded-*
        # headers (the token endpoint requires HTTPS), from exactly that many proxies.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    return app


def _json_error(api: Api, error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """flask-smorest's JSON error, with a `message` always: clients print it to the user.

    Werkzeug's own headers are kept (a 405 must say which methods are `Allow`ed, RFC 9110),
    except its HTML Content-Type.
    """
    payload, status, headers = api.handle_http_exception(error)
    if "message" not in payload:
        payload["message"] = (
            _summarize(payload["errors"]) if "errors" in payload else error.description
        )
    own_headers = {
        name: value for name, value in error.get_headers() if name.lower() != "content-type"
    }
    return payload, status, {**own_headers, **(headers or {})}


def _release_session(_error: BaseException | None) -> None:
    """End the request's session even when the database dropped its connection meanwhile.

    Closing rolls back, which raises on a connection PostgreSQL terminated (restart); the
    answer is already made, so invalidate the connection (the pool replaces it) instead of
    letting the error turn that answer into a 500.
    """
    try:
        db.session.remove()
    except DATABASE_UNAVAILABLE:
        db.session().invalidate()
        db.session.remove()


def _refuse_large_body() -> None:
    """413 as soon as the announced length passes LM_MAX_BODY_BYTES, before anything reads it.

    A chunked body announces no length; Werkzeug would silently cut it at the limit, so it is
    refused (411) instead: every client of this API sends Content-Length.
    """
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413, message=f"Request body larger than {limit} bytes (LM_MAX_BODY_BYTES).")
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        abort(411, message="Send the request body with a Content-Length, not chunked.")


def _database_unavailable(api: Api, error: Exception) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A JSON 503 with Retry-After, not a 500, while the database cannot be reached.

    It restarts or fails over to a standby (docs/deploy.md): the agent's prolog treats a 5xx
    like no answer, and the next request after it returns gets a fresh connection
    (pool_pre_ping drops dead ones), so no restart of the API is needed.
    """
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    log.warning("database unavailable: %s", reason[0] if reason else type(error).__name__)
    with contextlib.suppress(*DATABASE_UNAVAILABLE):  # the connection is gone; the pool renews it
        db.session.rollback()
    unavailable = ServiceUnavailable(
        "The database cannot be reached; retry later.", retry_after=DATABASE_RETRY_AFTER
    )
    return _json_error(api, unavailable)


def _summarize(errors: Any, where: str = "") -> str:
    """One line out of webargs' nested {location: {field: [messages]}} validation errors."""
    if isinstance(errors, dict):
        return "; ".join(
            _summarize(nested, f"{where}.{key}" if where else str(key))
            for key, nested in errors.items()
        )
    text = " ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
    return f"{where}: {text}" if where else text


def _register_swagger_ui_files(app: Flask) -> None:
    """Serve Swagger UI's JS/CSS from the installed bundle: clusters are often air-gapped."""
    root = swagger_ui_bundle.swagger_ui_path

    @app.get(f"{SWAGGER_UI_STATIC}<path:filename>")
    def swagger_ui_static(filename: str) -> Response:
        return send_from_directory(root, filename)
