"""/lm/features/{id}/usage, /pool/usage and /checkouts: a feature's usage history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema

from backend import auth, history
from backend.models import Feature
from backend.resources.blueprint import Blueprint
from backend.resources.persistence import get_or_404
from backend.resources.usage.schemas import CheckoutsSchema, SeriesArgsSchema, SeriesSchema

blp = Blueprint(
    "usage",
    __name__,
    url_prefix="/features",
    description="Usage history of features and pools: time series, who holds licenses now",
)

DEFAULT_RANGE = timedelta(hours=24)


def _series(feature_ids: list[int], args: dict[str, Any]) -> dict[str, Any]:
    end = args.get("end") or datetime.now(UTC)
    start = args.get("start") or end - DEFAULT_RANGE
    step = args["step"] if "step" in args else history.default_step(start, end)
    try:
        points = history.series(feature_ids, start, end, step)
    except history.SeriesRangeError as error:
        abort(422, message=str(error), errors={"query": {"range": [str(error)]}})
    return {
        "feature_ids": feature_ids,
        "start": start,
        "end": end,
        "step": step,
        "summary": history.summary(points, step),
        "points": points,
    }


@blp.route("/<int:feature_id>/usage")
class FeatureUsage(MethodView):
    @auth.require("feature", "read")
    @blp.arguments(SeriesArgsSchema, location="query")
    @blp.response(200, SeriesSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    def get(self, args, feature_id):
        """This feature's usage over time, one point per step, with a summary of the range.

        422 when end is not after start, or range / step asks for more than 11,000 points.
        """
        get_or_404(Feature, feature_id)
        return _series([feature_id], args)


@blp.route("/<int:feature_id>/pool/usage")
class PoolUsage(MethodView):
    @auth.require("feature", "read")
    @blp.arguments(SeriesArgsSchema, location="query")
    @blp.response(200, SeriesSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    def get(self, args, feature_id):
        """The usage of this feature's pool (its product.feature on every cluster sharing its
        license servers): the server's figures once, demand and reservations of all clusters
        added up, refusals of all clusters."""
        get_or_404(Feature, feature_id)
        return _series(history.pool_members(feature_id), args)


@blp.route("/<int:feature_id>/checkouts")
class FeatureCheckouts(MethodView):
    @auth.require("feature", "read")
    @blp.response(200, CheckoutsSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    def get(self, feature_id):
        """Who holds this feature's licenses, as of its last report that read the server."""
        get_or_404(Feature, feature_id)
        latest = history.latest_checkouts(feature_id) or {"sampled_at": None, "checkouts": []}
        return {"feature_id": feature_id, **latest}
