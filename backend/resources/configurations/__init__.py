"""/lm/configurations: a cluster's license pools (server type, grace time, servers, features)."""

from collections.abc import Iterable

from flask.views import MethodView
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backend import auth
from backend.extensions import db
from backend.models import Configuration, Feature
from backend.resources.blueprint import Blueprint
from backend.resources.configurations.schemas import ConfigurationSchema, ConfigurationUpdateSchema
from backend.resources.features import with_pool_figures
from backend.resources.listing import Listing, paginate
from backend.resources.ownership import (
    ensure_may_assign_cluster,
    get_own_or_404,
    get_visible_or_404,
    scope_to_caller,
)
from backend.resources.persistence import commit_or_abort, update_row

blp = Blueprint(
    "configurations",
    __name__,
    url_prefix="/configurations",
    description="Configurations: a cluster's license server type, grace time, servers, features",
)

LISTING = Listing(
    "Configuration",
    {
        "id": Configuration.id,
        "name": Configuration.name,
        "cluster_client_id": Configuration.cluster_client_id,
        "grace_time": Configuration.grace_time,
        "booking_max_age": Configuration.booking_max_age,
        "type": Configuration.type,
    },
    (Configuration.name, Configuration.cluster_client_id, Configuration.type),
)

# Servers and features (with product) of many configurations in two queries, not one per row.
WITH_CHILDREN = (
    selectinload(Configuration.license_servers),
    selectinload(Configuration.features).joinedload(Feature.product),
)


def _with_pool_figures(configurations: Iterable[Configuration]) -> None:
    with_pool_figures(
        feature for configuration in configurations for feature in configuration.features
    )


def _refusals(configuration: Configuration) -> dict[str, tuple[int, str]]:
    return {
        "uq_configurations_cluster_client_id_name": (
            409,
            f"Cluster {configuration.cluster_client_id!r} already has a configuration named "
            f"{configuration.name!r}.",
        )
    }


def _load(config_id: int) -> Configuration:
    configuration = get_visible_or_404(Configuration, config_id, *WITH_CHILDREN)
    _with_pool_figures([configuration])
    return configuration


@blp.route("")
class Configurations(MethodView):
    @auth.require("configuration", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, ConfigurationSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List configurations with their license servers and features: every cluster's for an
        admin, otherwise the caller's cluster's."""
        statement = scope_to_caller(
            select(Configuration).options(*WITH_CHILDREN), Configuration.cluster_client_id
        )
        statement = LISTING.apply(statement, list_args)
        configurations = paginate(statement, pagination_parameters)
        _with_pool_figures(configurations)
        return configurations

    @auth.require("configuration", "create")
    @blp.arguments(ConfigurationSchema)
    @blp.response(201, ConfigurationSchema)
    @blp.alt_response(
        409, schema=ErrorSchema, description="The cluster already has a configuration of this name"
    )
    def post(self, configuration_data):
        """Create a configuration of the caller's cluster (any cluster's for an admin); add its
        license servers and features afterwards."""
        ensure_may_assign_cluster(configuration_data["cluster_client_id"])
        configuration = Configuration(**configuration_data)
        db.session.add(configuration)
        commit_or_abort(_refusals(configuration))
        return _load(configuration.id)


@blp.route("/by_client_id")
class ConfigurationsOfMyCluster(MethodView):
    @auth.require("configuration", "read")
    @blp.response(200, ConfigurationSchema(many=True))
    def get(self):
        """All configurations of the token's cluster (what its agent polls), not paged."""
        configurations = db.session.scalars(
            select(Configuration)
            .where(Configuration.cluster_client_id == auth.current_identity().client_id)
            .options(*WITH_CHILDREN)
            .order_by(Configuration.id)
        ).all()
        _with_pool_figures(configurations)
        return configurations


@blp.route("/<int:config_id>")
class ConfigurationById(MethodView):
    @auth.require("configuration", "read")
    @blp.response(200, ConfigurationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No configuration with this id")
    def get(self, config_id):
        """Show a configuration of the caller's cluster (any for an admin)."""
        return _load(config_id)

    @auth.require("configuration", "update")
    @blp.arguments(ConfigurationUpdateSchema)
    @blp.response(200, ConfigurationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No configuration with this id")
    @blp.alt_response(
        409, schema=ErrorSchema, description="The cluster already has a configuration of this name"
    )
    def put(self, configuration_data, config_id):
        """Change a configuration of the caller's cluster (only the fields sent); only an admin
        gives it to another cluster."""
        configuration = get_own_or_404(Configuration, config_id)
        if "cluster_client_id" in configuration_data:
            ensure_may_assign_cluster(configuration_data["cluster_client_id"])
        update_row(configuration, configuration_data)
        commit_or_abort(_refusals(configuration))
        return _load(config_id)

    @auth.require("configuration", "delete")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No configuration with this id")
    def delete(self, config_id):
        """Delete a configuration with its license servers, features and their bookings."""
        db.session.delete(get_own_or_404(Configuration, config_id))
        db.session.commit()
