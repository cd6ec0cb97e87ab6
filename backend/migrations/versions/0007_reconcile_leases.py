"""reconcile_leases: one agent per cluster reconciles at a time (backup controllers)

Revision ID: 0007_reconcile_leases
Revises: 0006_unparsable_report_status
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_reconcile_leases"
down_revision = "0006_unparsable_report_status"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reconcile_leases",
        sa.Column("cluster_client_id", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cluster_client_id", name=op.f("pk_reconcile_leases")),
    )


def downgrade():
    op.drop_table("reconcile_leases")
