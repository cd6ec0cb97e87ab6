"""GET /lm/metrics: the Prometheus text format, computed from the database at scrape time.

Every figure is read from PostgreSQL when Prometheus scrapes (a custom collector), so any API
process of any host answers the same: nothing is counted in one worker's memory. The one
exception is the request latency histogram, which only a process can measure: it is exported
when gunicorn runs with PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, all
workers' files summed at scrape time), and left out otherwise (one worker's share would lie).
"""

from __future__ import annotations

import os

from flask import Response, current_app
from flask.views import MethodView

from backend import auth
from backend.metrics import render
from backend.resources.blueprint import Blueprint

blp = Blueprint(
    "metrics", __name__, url_prefix="/metrics", description="Prometheus metrics (text format)"
)


def _open() -> bool:
    return bool(current_app.config["LM_SETTINGS"].metrics_open)


@blp.route("")
class Metrics(MethodView):
    @auth.require("metrics", "read", open_when=_open)
    @blp.response(200, content_type="text/plain")
    def get(self):
        """Pool, report, booking and refusal metrics for Prometheus (needs metrics:read, or
        none when LM_METRICS_OPEN is true)."""
        body, content_type = render(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        return Response(body, content_type=content_type)
