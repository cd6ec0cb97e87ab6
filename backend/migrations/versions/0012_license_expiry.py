"""features.license_expires: the expiry date the license server prints (alerts)

Revision ID: 0012_license_expiry
Revises: 0011_token_attempts
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_license_expiry"
down_revision = "0011_token_attempts"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("features", sa.Column("license_expires", sa.Date(), nullable=True))


def downgrade():
    op.drop_column("features", "license_expires")
