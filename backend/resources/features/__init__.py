"""/lm/features: product.features of configurations, with the usage their agent reports."""

from collections.abc import Iterable

from flask.views import MethodView
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from backend import auth
from backend.booking import PoolFigures, pool_figures
from backend.extensions import db
from backend.models import Configuration, Feature, Product
from backend.resources.blueprint import Blueprint
from backend.resources.features.schemas import (
    FeatureReportSchema,
    FeatureSchema,
    FeatureUpdateSchema,
)
from backend.resources.listing import Listing, paginate
from backend.resources.ownership import (
    get_own_or_404,
    get_visible_or_404,
    require_own_configuration,
    scope_to_caller,
)
from backend.resources.persistence import commit_or_abort, require_reference, update_row
from backend.usage import record_usage

blp = Blueprint(
    "features",
    __name__,
    url_prefix="/features",
    description="Features (product.feature) of configurations and their reported usage",
)

LISTING = Listing(
    "Feature",
    {
        "id": Feature.id,
        "name": Feature.name,
        "product_name": Product.name,
        "config_id": Feature.config_id,
        "reserved": Feature.reserved,
        "total": Feature.total,
        "used": Feature.used,
        "reported_at": Feature.reported_at,
    },
    (Feature.name, Product.name),
)


def with_pool_figures(features: Iterable[Feature]) -> None:
    """Give each feature its pool's figures for the response (one query for all): what the
    booking rule and the agent's reservation use."""
    features = list(features)
    figures = pool_figures(feature.id for feature in features)
    for feature in features:
        feature.pool = figures.get(feature.id) or PoolFigures(
            None, None, feature.reserved, 0, False
        )


def _refusals(feature: Feature, product_name: str) -> dict[str, tuple[int, str]]:
    return {
        "uq_features_config_id_product_id_name": (
            409,
            f"Configuration {feature.config_id} already has feature {feature.name!r} "
            f"of product {product_name!r}.",
        ),
        "fk_features_config_id_configurations": (
            422,
            f"No configuration with id {feature.config_id}.",
        ),
        "fk_features_product_id_products": (422, f"No product with id {feature.product_id}."),
    }


@blp.route("")
class Features(MethodView):
    @auth.require("feature", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, FeatureSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List features with their product, bookings and availability: every cluster's for an
        admin, otherwise the caller's cluster's."""
        statement = scope_to_caller(
            select(Feature)
            .join(Feature.product)
            .join(Feature.configuration)
            .options(contains_eager(Feature.product)),
            Configuration.cluster_client_id,
        )
        features = paginate(LISTING.apply(statement, list_args), pagination_parameters)
        with_pool_figures(features)
        return features

    @auth.require("feature", "create")
    @blp.arguments(FeatureSchema)
    @blp.response(201, FeatureSchema)
    @blp.alt_response(
        409, schema=ErrorSchema, description="The configuration already has this product.feature"
    )
    def post(self, feature_data):
        """Add a feature to a configuration of the caller's cluster."""
        require_own_configuration("config_id", feature_data["config_id"])
        product = require_reference("product_id", Product, feature_data["product_id"])
        feature = Feature(**feature_data)
        refusals = _refusals(feature, product.name)
        db.session.add(feature)
        commit_or_abort(refusals)
        with_pool_figures([feature])
        return feature


@blp.route("/<int:feature_id>")
class FeatureById(MethodView):
    @auth.require("feature", "read")
    @blp.response(200, FeatureSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    def get(self, feature_id):
        """Show a feature of the caller's cluster (any for an admin) with its availability."""
        feature = get_visible_or_404(Feature, feature_id, joinedload(Feature.product))
        with_pool_figures([feature])
        return feature

    @auth.require("feature", "update")
    @blp.arguments(FeatureUpdateSchema)
    @blp.response(200, FeatureSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    @blp.alt_response(
        409, schema=ErrorSchema, description="The configuration already has this product.feature"
    )
    def put(self, feature_data, feature_id):
        """Change a feature of the caller's cluster (only the fields sent), e.g. its desktop
        `reserved` count."""
        feature = get_own_or_404(Feature, feature_id, joinedload(Feature.product))
        if "config_id" in feature_data:
            require_own_configuration("config_id", feature_data["config_id"])
        product = feature.product
        if "product_id" in feature_data:
            product = require_reference("product_id", Product, feature_data["product_id"])
        update_row(feature, feature_data)
        commit_or_abort(_refusals(feature, product.name))
        with_pool_figures([feature])
        return feature

    @auth.require("feature", "delete")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No feature with this id")
    def delete(self, feature_id):
        """Delete a feature and the bookings on it."""
        db.session.delete(get_own_or_404(Feature, feature_id))
        db.session.commit()


@blp.route("/by_client_id")
class FeaturesOfMyCluster(MethodView):
    @auth.require("feature", "update")
    @blp.arguments(FeatureReportSchema(many=True))
    @blp.response(200, FeatureSchema(many=True))
    @blp.alt_response(
        404,
        schema=ErrorSchema,
        description="Some reported features are not configured for the cluster",
    )
    def put(self, reports):
        """Record the usage the caller's agent read from its license servers.

        Features are matched by product and feature name, case-insensitively, among the
        configurations of the token's cluster. One transaction: when any name is unknown,
        nothing is written and the answer names every unknown one.
        """
        features = record_usage(auth.current_identity().client_id, reports)
        with_pool_figures(features)
        return features
