"""license failures: jobs the epilog found dead for lack of a license

Revision ID: 0003_license_failures
Revises: 0001
Create Date: 2026-11-30 02:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003_license_failures"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "license_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slurm_job_id", sa.String(length=64), nullable=False),
        sa.Column("cluster_client_id", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("feature", sa.String(length=511), nullable=False),
        sa.Column("matched_rule", sa.String(length=511), nullable=False),
        sa.Column("output_file", sa.String(length=4096), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("requeue_count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('requeued', 'left_failed')",
            name=op.f("ck_license_failures_known_action"),
        ),
        sa.CheckConstraint(
            "requeue_count >= 0", name=op.f("ck_license_failures_requeue_count_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_license_failures")),
    )
    with op.batch_alter_table("license_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_license_failures_cluster_client_id"), ["cluster_client_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("license_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_license_failures_cluster_client_id"))
    op.drop_table("license_failures")
