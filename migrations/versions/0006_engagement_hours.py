"""engagement hours: everyone's engagement histogram (for members' best hours); push_suppressed events

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "population_engagement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hours", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_population_engagement")),
    )
    # ADD VALUE cannot run inside a transaction block on older PostgreSQL; autocommit_block is safe everywhere.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE interaction_kind ADD VALUE IF NOT EXISTS 'push_suppressed' AFTER 'push_sent'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; events of that kind go with the downgrade's data loss.
    op.execute("DELETE FROM timeline_events WHERE kind = 'push_suppressed'")
    op.drop_table("population_engagement")
