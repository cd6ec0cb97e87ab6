"""report status 'unparsable': the agent read the server but did not understand its output

Revision ID: 0006_unparsable_report_status
Revises: 0005_booking_lifetime_freshness
"""

from alembic import op

revision = "0006_unparsable_report_status"
down_revision = "0005_booking_lifetime_freshness"
branch_labels = None
depends_on = None

CONSTRAINT = "ck_features_known_report_status"


def upgrade():
    op.drop_constraint(op.f(CONSTRAINT), "features", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT),
        "features",
        "report_status IS NULL OR report_status IN ('ok', 'unreachable', 'unparsable')",
    )


def downgrade():
    op.execute(
        "UPDATE features SET report_status = 'unreachable' WHERE report_status = 'unparsable'"
    )
    op.drop_constraint(op.f(CONSTRAINT), "features", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT),
        "features",
        "report_status IS NULL OR report_status IN ('ok', 'unreachable')",
    )
