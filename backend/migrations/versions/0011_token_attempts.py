"""token_attempts: failed token requests per client id and address

Revision ID: 0011_token_attempts
Revises: 0010_product_names_ci
Create Date: 2026-11-30 02:20:00

"""

from alembic import op
import sqlalchemy as sa

revision = "0011_token_attempts"
down_revision = "0010_product_names_ci"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "token_attempts",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_token_attempts")),
    )
    op.create_index(
        op.f("ix_token_attempts_window_start"), "token_attempts", ["window_start"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_token_attempts_window_start"), table_name="token_attempts")
    op.drop_table("token_attempts")
