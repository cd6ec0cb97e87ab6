"""usage history: raw samples, hourly rollups, refusals, granted counters

Revision ID: 0008_usage_history
Revises: 0007_reconcile_leases
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_usage_history"
down_revision = "0007_reconcile_leases"
branch_labels = None
depends_on = None

COUNTS = ("total", "used", "booked", "reserved")


def upgrade():
    for column in ("bookings_granted", "licenses_granted"):
        op.add_column(
            "features", sa.Column(column, sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "usage_samples",
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        sa.Column("reservation", sa.BigInteger(), nullable=True),
        sa.Column("demand", sa.BigInteger(), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=True),
        sa.Column("checkouts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_usage_samples_feature_id_features"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feature_id", "sampled_at", name=op.f("pk_usage_samples")),
    )
    op.create_index(
        "ix_usage_samples_sampled_at", "usage_samples", ["sampled_at"], postgresql_using="brin"
    )
    optional = ("reservation", "demand")
    op.create_table(
        "usage_hourly",
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("full_samples", sa.Integer(), nullable=False),
        sa.Column("failed_samples", sa.Integer(), nullable=False),
        sa.Column("total_min", sa.BigInteger(), nullable=False),
        sa.Column("total_max", sa.BigInteger(), nullable=False),
        *(
            sa.Column(f"{name}_{kind}", sa.Float() if kind == "mean" else sa.BigInteger(),
                      nullable=name in optional)
            for name in ("used", "booked", *optional)
            for kind in ("min", "mean", "max")
        ),
        sa.Column("reserved_max", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("feature_id", "hour", name=op.f("pk_usage_hourly")),
    )
    op.create_table(
        "history_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pruned_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_state")),
    )
    op.create_table(
        "refusals",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cluster_client_id", sa.String(length=255), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=True),
        sa.Column("product_feature", sa.String(length=511), nullable=False),
        sa.Column("requested", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusals")),
    )
    op.create_index(
        "ix_refusals_feature_id_refused_at", "refusals", ["feature_id", "refused_at"]
    )
    op.create_index("ix_refusals_refused_at", "refusals", ["refused_at"], postgresql_using="brin")
    op.create_table(
        "refusal_counters",
        sa.Column("cluster_client_id", sa.String(length=255), nullable=False),
        sa.Column("product_feature", sa.String(length=511), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cluster_client_id", "product_feature", "reason", name=op.f("pk_refusal_counters")
        ),
    )


def downgrade():
    op.drop_table("refusal_counters")
    op.drop_table("refusals")
    op.drop_table("history_state")
    op.drop_table("usage_hourly")
    op.drop_table("usage_samples")
    for column in ("bookings_granted", "licenses_granted"):
        op.drop_column("features", column)
