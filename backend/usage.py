"""Usage reports: what a cluster's agent read from its license servers, written to its features.

The booking rule (backend/booking.py) reads these figures; a cluster writes only the features of
its own configurations, so one cluster's wrong report cannot change another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_smorest import abort
from sqlalchemy import ARRAY, Integer, Text, and_, any_, bindparam, func, select
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
    # Lock in id order, as booking admission does, so concurrent writers cannot deadlock. The
    # wanted names arrive as two arrays joined to the features: a list of (product, feature)
    # pairs in an IN clause nests one expression per pair and exceeds PostgreSQL's stack depth
    # at a few thousand entries.
    pairs = list(by_name)
    wanted = (
        select(
            func.unnest(bindparam("products", [p for p, _ in pairs], ARRAY(Text))).label("product"),
            func.unnest(bindparam("features", [f for _, f in pairs], ARRAY(Text))).label("feature"),
        )
    ).subquery()
    features = db.session.scalars(
        select(Feature)
        .join(Feature.product)
        .join(Feature.configuration)
        .join(
            wanted,
            and_(
                func.lower(Product.name) == wanted.c.product,
                func.lower(Feature.name) == wanted.c.feature,
            ),
        )
        .where(Configuration.cluster_client_id == cluster)
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
        if report.get("expires") is not None:  # servers print it only now and then: kept
            feature.license_expires = report["expires"]
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
            .where(Feature.id == any_(bindparam("ids", feature_ids, ARRAY(Integer))))
            .options(joinedload(Feature.product))
            .order_by(Feature.id)
        ).all()
    )
