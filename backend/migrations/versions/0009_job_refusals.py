"""job refusals: the prolog's last refusal of each cluster's Slurm job (why a job waits)

Revision ID: 0009_job_refusals
Revises: 0008_usage_history
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_job_refusals"
down_revision = "0008_usage_history"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_refusals",
        sa.Column("cluster_client_id", sa.String(length=255), nullable=False),
        sa.Column("slurm_job_id", sa.String(length=64), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wanted", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("cluster_client_id", "slurm_job_id", name=op.f("pk_job_refusals")),
    )
    op.create_index(
        op.f("ix_job_refusals_refused_at"), "job_refusals", ["refused_at"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_job_refusals_refused_at"), table_name="job_refusals")
    op.drop_table("job_refusals")
