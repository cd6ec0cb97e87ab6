"""GET /lm/health: liveness and database status, the one endpoint that needs no token."""

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from backend.extensions import DATABASE_RETRY_AFTER, db

blp = Blueprint("health", __name__, url_prefix="/health", description="Service health")


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database cannot be reached")
    def get(self):
        """Answer 200 when the API and its database work (monitoring, load balancers)."""
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # any driver error means the database is not usable
            db.session.rollback()
            answer = {"status": "error", "database": "unreachable"}
            return answer, 503, {"Retry-After": str(DATABASE_RETRY_AFTER)}
        return {"status": "ok", "database": "ok"}
