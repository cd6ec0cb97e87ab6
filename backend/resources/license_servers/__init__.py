"""/lm/license_servers: the host:port mirrors a configuration's agent polls."""

from flask.views import MethodView
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select

from backend import auth
from backend.extensions import db
from backend.models import Configuration, LicenseServer
from backend.resources.blueprint import Blueprint
from backend.resources.license_servers.schemas import LicenseServerSchema, LicenseServerUpdateSchema
from backend.resources.listing import Listing, paginate
from backend.resources.ownership import (
    get_own_or_404,
    get_visible_or_404,
    require_own_configuration,
    scope_to_caller,
)
from backend.resources.persistence import commit_or_abort, update_row

blp = Blueprint(
    "license_servers",
    __name__,
    url_prefix="/license_servers",
    description="License servers (host:port) of configurations; several are mirrors",
)

LISTING = Listing(
    "LicenseServer",
    {
        "id": LicenseServer.id,
        "host": LicenseServer.host,
        "port": LicenseServer.port,
        "config_id": LicenseServer.config_id,
    },
    (LicenseServer.host,),
)


def _refusals(server: LicenseServer) -> dict[str, tuple[int, str]]:
    where = f"{server.host}:{server.port}"
    return {
        "uq_license_servers_config_id_host_port": (
            409,
            f"Configuration {server.config_id} already has license server {where}.",
        ),
        "fk_license_servers_config_id_configurations": (
            422,
            f"No configuration with id {server.config_id}.",
        ),
    }


@blp.route("")
class LicenseServers(MethodView):
    @auth.require("license-server", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, LicenseServerSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List license servers: every cluster's for an admin, otherwise the caller's cluster's."""
        statement = scope_to_caller(
            select(LicenseServer).join(LicenseServer.configuration),
            Configuration.cluster_client_id,
        )
        return paginate(LISTING.apply(statement, list_args), pagination_parameters)

    @auth.require("license-server", "create")
    @blp.arguments(LicenseServerSchema)
    @blp.response(201, LicenseServerSchema)
    @blp.alt_response(
        409, schema=ErrorSchema, description="The configuration already has this host:port"
    )
    def post(self, server_data):
        """Add a license server to a configuration of the caller's cluster."""
        require_own_configuration("config_id", server_data["config_id"])
        server = LicenseServer(**server_data)
        db.session.add(server)
        commit_or_abort(_refusals(server))
        return server


@blp.route("/<int:server_id>")
class LicenseServerById(MethodView):
    @auth.require("license-server", "read")
    @blp.response(200, LicenseServerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No license server with this id")
    def get(self, server_id):
        """Show a license server of the caller's cluster (any for an admin)."""
        return get_visible_or_404(LicenseServer, server_id)

    @auth.require("license-server", "update")
    @blp.arguments(LicenseServerUpdateSchema)
    @blp.response(200, LicenseServerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No license server with this id")
    @blp.alt_response(
        409, schema=ErrorSchema, description="The configuration already has this host:port"
    )
    def put(self, server_data, server_id):
        """Change a license server's host, port or configuration (only the fields sent), within
        the caller's cluster."""
        server = get_own_or_404(LicenseServer, server_id)
        if "config_id" in server_data:
            require_own_configuration("config_id", server_data["config_id"])
        update_row(server, server_data)
        commit_or_abort(_refusals(server))
        return server

    @auth.require("license-server", "delete")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No license server with this id")
    def delete(self, server_id):
        """Remove a license server."""
        db.session.delete(get_own_or_404(LicenseServer, server_id))
        db.session.commit()
