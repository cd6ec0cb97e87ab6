"""License pools set up in the API the way an admin does it: a configuration of one cluster, its
license servers, the products (made when missing) and the features.

The one builder over HTTP for devstack's demo and end-to-end stack, the agent's tests and the
benchmarks. (The booking-rule tests in tests/backend/pools.py write rows directly instead: they
need usage figures and report ages the API only takes from an agent's report.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lm_common import api


def add_configuration(
    admin: api.ApiClient,
    cluster_client_id: str,
    features: Mapping[str, int] | Iterable[str],
    servers: Iterable[str] = ("lic1:27000",),
    *,
    name: str,
    grace_time: int = 300,
    server_type: str = "flexlm",
) -> dict[str, Any]:
    """Create the configuration; `features` are "product.feature" names, or a mapping of them to
    their `reserved` (desktop) count; `servers` are "host:port", mirrors in order.

    Returns the configuration as created, plus "feature_ids": {"product.feature": id}.
    """
    reserved = dict(features) if isinstance(features, Mapping) else dict.fromkeys(features, 0)
    configuration = admin.post(
        "/lm/configurations",
        {
            "name": name,
            "cluster_client_id": cluster_client_id,
            "grace_time": grace_time,
            "type": server_type,
        },
    )
    for server in servers:
        host, port = server.rsplit(":", 1)
        admin.post(
            "/lm/license_servers",
            {"config_id": configuration["id"], "host": host, "port": int(port)},
        )
    products = {product["name"]: product["id"] for product in admin.get_all("/lm/products")}
    feature_ids = {}
    for product_feature, count in reserved.items():
        product, feature = product_feature.split(".", 1)
        if product not in products:
            products[product] = admin.post("/lm/products", {"name": product})["id"]
        created = admin.post(
            "/lm/features",
            {
                "name": feature,
                "product_id": products[product],
                "config_id": configuration["id"],
                "reserved": count,
            },
        )
        feature_ids[product_feature] = created["id"]
    return {**configuration, "feature_ids": feature_ids}
