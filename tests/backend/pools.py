"""Test data for the booking rule: configurations of clusters with servers and reported features.

Rows are written through the models so the booking tests do not depend on the other resources'
endpoints; usage is what the agent's report would have set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import Configuration, Feature, LicenseServer, Product, utcnow

DEFAULT_SERVERS = (("licserv1", 27000),)


def _product(name: str) -> Product:
    product = db.session.scalar(select(Product).where(Product.name == name))
    if product is None:
        product = Product(name=name)
        db.session.add(product)
    return product


def add_configuration(
    app: Flask,
    cluster_client_id: str,
    features: Mapping[str, Mapping[str, int]],
    servers: Iterable[tuple[str, int]] = DEFAULT_SERVERS,
    name: str | None = None,
) -> dict[str, int]:
    """A configuration of `cluster_client_id` whose features were just reported ok.

    `features` maps "product.feature" to its numbers (total, used, reserved; 0 when absent).
    Returns the new features' ids by "product.feature".
    """
    with app.app_context():
        configuration = Configuration(
            name=name or f"{cluster_client_id}-{'-'.join(f'{h}:{p}' for h, p in servers)}",
            cluster_client_id=cluster_client_id,
            grace_time=300,
            type="flexlm",
            license_servers=[LicenseServer(host=host, port=port) for host, port in servers],
        )
        db.session.add(configuration)
        created = {}
        for product_feature, numbers in features.items():
            product_name, feature_name = product_feature.split(".", 1)
            feature = Feature(
                name=feature_name,
                product=_product(product_name),
                configuration=configuration,
                total=numbers.get("total", 0),
                used=numbers.get("used", 0),
                reserved=numbers.get("reserved", 0),
                reported_at=utcnow(),
                report_status="ok",
            )
            db.session.add(feature)
            created[product_feature] = feature
        db.session.commit()
        return {product_feature: feature.id for product_feature, feature in created.items()}


def report(
    app: Flask,
    feature_id: int,
    *,
    status: str | None = "ok",
    age: timedelta = timedelta(0),
    **numbers: int,
) -> None:
    """Set a feature's last report as the agent would: status, when (`age` ago), total/used.

    `status=None` makes the feature one that was never reported.
    """
    with app.app_context():
        feature = db.session.get(Feature, feature_id)
        feature.report_status = status
        feature.reported_at = None if status is None else utcnow() - age
        for field, value in numbers.items():
            setattr(feature, field, value)
        db.session.commit()
