"""hot paths: trait folds queued for the worker; terminal changes bump the store catalogue version

Recording an event no longer updates the member's trait counters and daily activity in the fact's
transaction; it queues the event in `pending_trait_folds` (same transaction) and the worker folds it
afterwards. Events recorded before this revision are already folded, so the queue starts empty.

Terminals are cached per process under `store_catalog_version` (stores.pos_auth). Store changes bump it
in their transaction already (stores.service); a trigger now does the same for the terminal columns that
decide whether a signed request is accepted, whoever changes them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_trait_folds",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_pending_trait_folds_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_pending_trait_folds")),
    )
    op.create_index(
        op.f("ix_pending_trait_folds_member_id"), "pending_trait_folds", ["member_id"], unique=False
    )
    op.execute(
        """
        CREATE FUNCTION bump_store_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO store_catalog_version (id, version) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET version = store_catalog_version.version + 1;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER pos_terminals_bump_store_catalog_version
        AFTER DELETE OR UPDATE OF store_id, key_id, secret_salt, secret_digest, disabled_at
        ON pos_terminals
        FOR EACH STATEMENT EXECUTE FUNCTION bump_store_catalog_version()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER pos_terminals_bump_store_catalog_version ON pos_terminals")
    op.execute("DROP FUNCTION bump_store_catalog_version()")
    # Events still queued are in no member's traits afterwards: `tsunagari traits rebuild` restores them.
    op.drop_index(op.f("ix_pending_trait_folds_member_id"), table_name="pending_trait_folds")
    op.drop_table("pending_trait_folds")
