"""features.license_expires: the expiry date the license server prints (alerts)

Revision ID: 0010_license_expiry
Revises: 0009_job_refusals
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_license_expiry"
down_revision = "0009_job_refusals"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("features", sa.Column("license_expires", sa.Date(), nullable=True))


def downgrade():
    op.drop_column("features", "license_expires")
