"""/lm/products: the licensed products (abaqus, ansys, ...) that features belong to."""

from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import func, select

from backend import auth
from backend.extensions import db
from backend.models import Configuration, Feature, Product
from backend.resources.blueprint import Blueprint
from backend.resources.listing import Listing, paginate
from backend.resources.persistence import commit_or_abort, get_or_404, update_row
from backend.resources.products.schemas import ProductSchema, ProductUpdateSchema

blp = Blueprint(
    "products", __name__, url_prefix="/products", description="Licensed products (abaqus, ...)"
)

LISTING = Listing("Product", {"id": Product.id, "name": Product.name}, (Product.name,))


def _ensure_name_free(name: str, product_id: int | None = None) -> None:
    """409 naming the product that already has this name in any case: `ABAQUS` and `abaqus`
    would split one license server's pool in two."""
    existing = db.session.scalar(select(Product).where(func.lower(Product.name) == name.lower()))
    if existing is not None and existing.id != product_id:
        abort(
            409,
            message=f"Product {existing.name!r} (id {existing.id}) already exists; names are "
            "compared without case.",
            errors={"existing": {"id": existing.id, "name": existing.name}},
        )


def _duplicate_name(name: str) -> dict[str, tuple[int, str]]:
    """The unique index decides when another request created the name meanwhile."""
    message = f"A product named {name!r} (in some case) already exists."
    return {"uq_products_lower_name": (409, message)}


@blp.route("")
class Products(MethodView):
    @auth.require("product", "read")
    @blp.arguments(LISTING.args_schema, location="query")
    @blp.response(200, ProductSchema(many=True))
    @blp.paginate()
    def get(self, list_args, pagination_parameters):
        """List products."""
        return paginate(LISTING.apply(select(Product), list_args), pagination_parameters)

    @auth.require("product", "create")
    @blp.arguments(ProductSchema)
    @blp.response(201, ProductSchema)
    @blp.alt_response(
        409, schema=ErrorSchema, description="A product with this name (in any case) exists"
    )
    def post(self, product_data):
        """Create a product (names are unique without regard to case)."""
        _ensure_name_free(product_data["name"])
        product = Product(**product_data)
        db.session.add(product)
        commit_or_abort(_duplicate_name(product.name))
        return product


@blp.route("/<int:product_id>")
class ProductById(MethodView):
    @auth.require("product", "read")
    @blp.response(200, ProductSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No product with this id")
    def get(self, product_id):
        """Show a product."""
        return get_or_404(Product, product_id)

    @auth.require("product", "update")
    @blp.arguments(ProductUpdateSchema)
    @blp.response(200, ProductSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No product with this id")
    @blp.alt_response(409, schema=ErrorSchema, description="Another product has this name")
    def put(self, product_data, product_id):
        """Rename a product."""
        product = get_or_404(Product, product_id)
        if "name" in product_data:
            _ensure_name_free(product_data["name"], product.id)
        update_row(product, product_data)
        commit_or_abort(_duplicate_name(product.name))
        return product

    @auth.require("product", "delete")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema, description="No product with this id")
    @blp.alt_response(409, schema=ErrorSchema, description="Features still refer to the product")
    def delete(self, product_id):
        """Delete a product that no feature refers to any more."""
        product = get_or_404(Product, product_id)
        dependents = db.session.execute(
            select(Configuration.name, Feature.name)
            .join(Feature.configuration)
            .where(Feature.product_id == product.id)
            .order_by(Feature.id)
        )
        in_use = ", ".join(
            f"{feature} (configuration {config!r})" for config, feature in dependents
        )
        # The database's ON DELETE RESTRICT decides, even against a feature created meanwhile.
        db.session.delete(product)
        message = f"Product {product.name!r} still has features: {in_use}. Delete them first."
        commit_or_abort({"fk_features_product_id_products": (409, message)})
