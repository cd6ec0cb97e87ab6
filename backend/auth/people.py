"""People of the built-in issuer: accounts with a name, a password and permissions.

People log in as themselves (`lm-cli login`, later the dashboard) instead of sharing an OAuth
client's secret. Passwords are stored with werkzeug's salted scrypt hash (Flask's own helper).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from backend.auth.permissions import validate_permission_names
from backend.extensions import AnySession
from backend.models import Person

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
# Checked against when the name is unknown, so a wrong name costs the same time as a wrong
# password: response times do not tell which names exist.
_DUMMY_HASH = generate_password_hash("not-a-password-of-anyone")


class PersonError(ValueError):
    """A person cannot be created, changed or found as asked; the message says why."""


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PersonError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def find_person(session: AnySession, name: str) -> Person | None:
    return session.scalars(select(Person).where(Person.name == name)).first()


def _existing(session: AnySession, name: str) -> Person:
    person = find_person(session, name)
    if person is None:
        raise PersonError(f"no person {name!r}")
    return person


def create_person(
    session: AnySession, *, name: str, password: str, permissions: list[str]
) -> Person:
    """Store a person with a hashed password and validated permissions."""
    if not NAME_PATTERN.match(name):
        raise PersonError(
            f"name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    granted = validate_permission_names(permissions)
    if not granted:
        raise PersonError("a person needs at least one permission")
    check_password_rules(password)
    if find_person(session, name) is not None:
        raise PersonError(f"person {name!r} already exists")
    person = Person(
        name=name, password_hash=generate_password_hash(password), permissions=" ".join(granted)
    )
    session.add(person)
    session.commit()
    return person


def list_people(session: AnySession) -> list[Person]:
    return list(session.scalars(select(Person).order_by(Person.name)))


def delete_person(session: AnySession, name: str) -> None:
    """Delete a person; the database drops their refresh tokens and pending logins with them."""
    session.delete(_existing(session, name))
    session.commit()


def set_password(session: AnySession, name: str, password: str) -> None:
    check_password_rules(password)
    person = _existing(session, name)
    person.password_hash = generate_password_hash(password)
    session.commit()


def authenticate_person(session: AnySession, name: str, password: str) -> Person | None:
    """The person when name and password match, else None (same cost either way)."""
    person = find_person(session, name) if NAME_PATTERN.match(name) else None
    stored = person.password_hash if person is not None else _DUMMY_HASH
    matches = check_password_hash(stored, password)
    return person if person is not None and matches else None
