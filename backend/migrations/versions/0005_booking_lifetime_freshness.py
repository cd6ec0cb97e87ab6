"""booking lifetime (configurations.booking_max_age) and report freshness (features.report_interval)

Revision ID: 0005_booking_lifetime_freshness
Revises: 0004_people
Create Date: 2026-11-30 02:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005_booking_lifetime_freshness"
down_revision = "0004_people"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("configurations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("booking_max_age", sa.BigInteger(), server_default="1800", nullable=False)
        )
        batch_op.create_check_constraint(
            "booking_max_age_not_negative", "booking_max_age >= 0"
        )
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_interval", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.drop_column("report_interval")
    with op.batch_alter_table("configurations", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_configurations_booking_max_age_not_negative"), type_="check"
        )
        batch_op.drop_column("booking_max_age")
