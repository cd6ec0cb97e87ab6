"""Loading a cluster's configurations, license servers and features for the caller, under the
ownership rule of backend.auth.permissions.

The rule (docs/auth.md, "Who may read and write what"): a configuration belongs to the cluster
named by its `cluster_client_id`, and its license servers and features belong to it too. A caller
without `license-manager:admin` sees and changes only its own cluster's rows; another cluster's
rows do not exist for it (404, or 422 when a body refers to one), so ids do not leak which other
clusters exist. Naming another cluster in a body (`cluster_client_id`) is refused with 403.
Products are a shared catalogue: every holder of the product permissions reads and changes them.
"""

from __future__ import annotations

import http
from typing import Any, TypeVar

from flask_smorest import abort
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from backend.auth import current_identity, may_access_cluster, may_read_cluster, visible_cluster
from backend.extensions import db
from backend.models import Configuration, Feature, LicenseServer
from backend.resources.persistence import abort_unknown_reference, get_or_404, label

Owned = TypeVar("Owned", Configuration, LicenseServer, Feature)


def owning_cluster(row: Configuration | LicenseServer | Feature) -> str:
    """The cluster a configuration, or the configuration of a server or feature, belongs to."""
    configuration = row if isinstance(row, Configuration) else row.configuration
    return configuration.cluster_client_id


def scope_to_caller(
    statement: Select[Any], cluster_column: InstrumentedAttribute[str]
) -> Select[Any]:
    """Restrict a list to the caller's cluster (the statement must join `cluster_column`)."""
    cluster = visible_cluster(current_identity())
    return statement if cluster is None else statement.where(cluster_column == cluster)


def get_visible_or_404(model: type[Owned], row_id: int, *options: Any) -> Owned:
    """The row with this id, or the same 404 as for a missing one when the caller may not see
    it (another cluster's)."""
    row = get_or_404(model, row_id, *options)
    if not may_read_cluster(current_identity(), owning_cluster(row)):
        abort(404, message=f"No {label(model)} with id {row_id}.")
    return row


def get_own_or_404(model: type[Owned], row_id: int, *options: Any) -> Owned:
    """A row the caller may change: 404 as above when it cannot see it, 403 when it sees it
    without owning it (a person without admin)."""
    row = get_visible_or_404(model, row_id, *options)
    ensure_may_assign_cluster(owning_cluster(row))
    return row


def require_own_configuration(field: str, config_id: int) -> Configuration:
    """The configuration a body's `field` refers to; 422 as if unknown when it is another
    cluster's (a server or feature may not be attached to, or moved into, it)."""
    configuration = db.session.get(Configuration, config_id)
    if configuration is None or not may_read_cluster(
        current_identity(), configuration.cluster_client_id
    ):
        abort_unknown_reference(field, Configuration, config_id)
    ensure_may_assign_cluster(configuration.cluster_client_id)
    return configuration


def ensure_may_assign_cluster(cluster_client_id: str) -> None:
    """403 unless the caller may change, or give a configuration to, `cluster_client_id`'s
    rows: its own cluster, or any for an admin."""
    identity = current_identity()
    if not may_access_cluster(identity, cluster_client_id):
        abort(
            http.HTTPStatus.FORBIDDEN,
            message=f"{identity} may not change the configurations of cluster "
            f"{cluster_client_id!r}: only its own client may (or license-manager:admin)",
        )
