"""Loading and saving rows for the views, with the errors a client can act on (404, 409, 422)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

from flask_smorest import abort
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.resources.fields import MAX_INTEGER

Row = TypeVar("Row", bound=db.Model)


def label(model: type[db.Model]) -> str:
    """'LicenseServer' -> 'license server', for messages."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()


def get_or_404(model: type[Row], row_id: int, *options: Any) -> Row:
    """The row with this id, or a JSON 404 naming what was not found."""
    # Ids beyond PostgreSQL's integer cannot exist; querying them would be a database error.
    row = db.session.get(model, row_id, options=options) if row_id <= MAX_INTEGER else None
    if row is None:
        abort(404, message=f"No {label(model)} with id {row_id}.")
    return row


def abort_unknown_reference(field: str, model: type[db.Model], row_id: int) -> NoReturn:
    """422 for a body that refers to a row that does not exist, as a field error."""
    abort(
        422,
        message=f"Unknown {label(model)}: {row_id}.",
        errors={"json": {field: [f"No {label(model)} with id {row_id}."]}},
    )


def require_reference(field: str, model: type[Row], row_id: int) -> Row:
    """The row a body's `field` refers to; 422 naming the field when it does not exist."""
    row = db.session.get(model, row_id)
    if row is None:
        abort_unknown_reference(field, model, row_id)
    return row


def update_row(row: db.Model, changes: Mapping[str, Any]) -> None:
    """Apply a PUT body's fields (partial: only those sent) to a row."""
    for field, value in changes.items():
        setattr(row, field, value)


def commit_or_abort(refusals: Mapping[str, tuple[int, str]]) -> None:
    """Commit; a violated constraint named in `refusals` rolls back and aborts with its
    (status, message).

    The database constraints are the authority (a pre-check could race with another request),
    so duplicates, vanished references and blocked deletes are recognised by constraint name.
    """
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
        if constraint is None or constraint not in refusals:
            raise
        status, message = refusals[constraint]
        abort(status, message=message)
