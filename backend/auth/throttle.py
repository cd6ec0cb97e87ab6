"""Failed token requests are limited per client id and per remote address, across processes.

Every API process and gunicorn worker shares the database, so the counters live in a small
table (`token_attempts`), not in one process's memory: flask-limiter cannot store in
PostgreSQL. A request takes one attempt of each of its two counters BEFORE its secret is
checked, in one committed statement, so a burst of parallel requests cannot pass the limit
together; a request whose secret was right gives its attempts back. The window is fixed:
`limit` attempts per `window` seconds from the first one. Counters are keyed by a hash of the
client id or address, so hostile ids cost a fixed 64 bytes a row, and expired rows are removed
as new attempts come in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import text

from backend.extensions import AnySession

TAKE_ATTEMPTS_SQL = text(
    """
WITH expired AS (
    DELETE FROM token_attempts
    WHERE window_start < now() - make_interval(secs => :window)
        AND key <> ALL(CAST(:keys AS text[]))
)
INSERT INTO token_attempts AS counter (key, attempts, window_start)
SELECT key, 1, now() FROM unnest(CAST(:keys AS text[])) AS keys(key)
ON CONFLICT (key) DO UPDATE SET
    attempts = CASE WHEN counter.window_start < now() - make_interval(secs => :window)
        THEN 1 ELSE counter.attempts + 1 END,
    window_start = CASE WHEN counter.window_start < now() - make_interval(secs => :window)
        THEN now() ELSE counter.window_start END
RETURNING attempts,
    EXTRACT(EPOCH FROM counter.window_start + make_interval(secs => :window) - now()) AS left
"""
)
GIVE_BACK_SQL = text(
    "UPDATE token_attempts SET attempts = attempts - 1 "
    "WHERE key = ANY(CAST(:keys AS text[])) AND attempts > 0"
)


@dataclass(frozen=True)
class Attempt:
    """One token request's claim on its counters: refused (retry_after > 0) or allowed."""

    keys: tuple[str, ...]
    retry_after: int


def counter_keys(client_id: str, remote_address: str | None) -> tuple[str, ...]:
    """The two counters a request counts against, as fixed-size hashes."""

    def key(kind: str, value: str) -> str:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{kind}:{digest}"

    return (key("client", client_id), key("address", remote_address or "unknown"))


def take_attempt(
    session: AnySession, client_id: str, remote_address: str | None, *, limit: int, window: int
) -> Attempt:
    """Count one attempt for the client id and the address; refused when either is past
    `limit` in its window. Committed at once, so every process sees it."""
    keys = counter_keys(client_id, remote_address)
    rows = session.execute(TAKE_ATTEMPTS_SQL, {"keys": list(keys), "window": window}).all()
    session.commit()
    over = [max(1, math.ceil(row.left)) for row in rows if row.attempts > limit]
    return Attempt(keys, max(over, default=0))


def give_back(session: AnySession, attempt: Attempt) -> None:
    """A request that authenticated does not count as a failure."""
    session.execute(GIVE_BACK_SQL, {"keys": list(attempt.keys)})
    session.commit()
