"""Flask extensions shared by the app factory, the models and the blueprints.

flask-smorest's Api is made per app in `create_app`: its OpenAPI document is per app.
"""

from typing import Any

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import Session, scoped_session

# Stable constraint names so Alembic migrations can name (and drop) them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Seconds a client is told to wait (Retry-After) while the database cannot be reached: about
# the time PostgreSQL takes to restart.
DATABASE_RETRY_AFTER = 5

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
# Limits only where a view asks (login page, device endpoint); counted per client address, in
# each process's memory (behind LM_TRUSTED_PROXIES the address is the forwarded one).
limiter = Limiter(get_remote_address, storage_uri="memory://", default_limits=[])

# A plain SQLAlchemy session, or Flask-SQLAlchemy's `db.session` (a scoped proxy of one).
AnySession = Session | scoped_session[Any]
