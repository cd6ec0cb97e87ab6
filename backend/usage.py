"""Usage reports: what a cluster's agent read from its license servers, written to its features.

The booking rule (backend/booking.py) reads these figures; a cluster writes only the features of
its own configurations, so one cluster's wrong report cannot change another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_smorest import abort
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import contains_eager, joinedload

from backend import history
from backend.booking import booked_on_pools
from backend.extensions import db
from backend.models import Configuration, Feature, Product, utcnow


def record_usage(cluster: str | None, reports: Iterable[Mapping[str, Any]]) -> list[Feature]:
    """Write each report's total, used and status to the cluster's feature, then commit.

    Features are matched by product and feature name, case-insensitively, among the
    configurations of `cluster`. One transaction: when any name is unknown, nothing is written
    and the 404 names every unknown one. Returns the updated features (product loaded).
    """
    by_name = {
        (report["product_name"].lower(), report["feature_name"].lower()): report
        for report in reports
    }
    # Lock in id order, as booking admission does, so concurrent writers cannot deadlock.
    features = db.session.scalars(
        select(Feature)
        .join(Feature.product)
        .join(Feature.configuration)
        .where(
            Configuration.cluster_client_id == cluster,
            tuple_(func.lower(Product.name), func.lower(Feature.name)).in_(list(by_name)),
        )
        .options(contains_eager(Feature.product))
        .order_by(Feature.id)
        .with_for_update(of=Feature)
    ).all()
    found = {(feature.product.name.lower(), feature.name.lower()) for feature in features}
    unknown = [
        f"{report['product_name']}.{report['feature_name']}"
        for key, report in by_name.items()
        if key not in found
    ]
    if unknown:
        db.session.rollback()
        abort(
            404,
            message=f"No feature {', '.join(unknown)} in the configurations of cluster "
            f"{cluster!r}; nothing was updated.",
            errors={"unknown": unknown},
        )
    now = utcnow()
    for feature in features:
        report = by_name[(feature.product.name.lower(), feature.name.lower())]
        feature.total = report.get("total", feature.total)
        feature.used = report.get("used", feature.used)
        feature.report_status = report["status"]
        feature.report_interval = report.get("interval")
        feature.reported_at = now
    feature_ids = [feature.id for feature in features]
    history.write_samples(
        features,
        {f.id: by_name[(f.product.name.lower(), f.name.lower())] for f in features},
        booked_on_pools(feature_ids),
    )
    db.session.commit()
    # Reload the committed rows in one query, not one per expired feature while serializing.
    return list(
        db.session.scalars(
            select(Feature)
            .where(Feature.id.in_(feature_ids))
            .options(joinedload(Feature.product))
            .order_by(Feature.id)
        ).all()
    )
