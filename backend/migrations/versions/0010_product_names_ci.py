"""product names unique case-insensitively

Revision ID: 0010_product_names_ci
Revises: 0009_job_refusals
Create Date: 2026-11-30 01:50:00

Products that differ only in case (`ABAQUS`, `abaqus`) split one license server into two pools.
Existing ones are merged into the oldest spelling first: their features move to it, unless the
same configuration already has that feature under the kept spelling, which an admin must resolve
(the upgrade stops and names them).
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_product_names_ci"
down_revision = "0009_job_refusals"
branch_labels = None
depends_on = None

# For each product whose lowered name another, older product has: the id to keep.
DUPLICATES_SQL = """
SELECT duplicate.id, duplicate.name, kept.id AS kept_id, kept.name AS kept_name
FROM products duplicate
JOIN LATERAL (
    SELECT id, name FROM products
    WHERE lower(name) = lower(duplicate.name) ORDER BY id LIMIT 1
) kept ON kept.id <> duplicate.id
ORDER BY duplicate.id
"""
COLLISIONS_SQL = """
SELECT moving.config_id, moving.name, :name AS product
FROM features moving
JOIN features staying
    ON staying.config_id = moving.config_id AND staying.name = moving.name
WHERE moving.product_id = :duplicate AND staying.product_id = :kept
"""


def upgrade():
    connection = op.get_bind()
    for duplicate in connection.execute(sa.text(DUPLICATES_SQL)).all():
        collisions = connection.execute(
            sa.text(COLLISIONS_SQL),
            {"duplicate": duplicate.id, "kept": duplicate.kept_id, "name": duplicate.name},
        ).all()
        if collisions:
            where = ", ".join(f"configuration {c.config_id} feature {c.name!r}" for c in collisions)
            raise RuntimeError(
                f"products {duplicate.kept_name!r} and {duplicate.name!r} differ only in case and "
                f"cannot be merged: both have {where}; delete one of each pair, then upgrade again"
            )
        connection.execute(
            sa.text("UPDATE features SET product_id = :kept WHERE product_id = :duplicate"),
            {"kept": duplicate.kept_id, "duplicate": duplicate.id},
        )
        connection.execute(
            sa.text("DELETE FROM products WHERE id = :duplicate"), {"duplicate": duplicate.id}
        )
    op.drop_constraint("uq_products_name", "products", type_="unique")
    op.create_index(
        "uq_products_lower_name", "products", [sa.text("lower(name)")], unique=True
    )


def downgrade():
    op.drop_index("uq_products_lower_name", table_name="products")
    op.create_unique_constraint("uq_products_name", "products", ["name"])
