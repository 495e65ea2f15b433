"""terminals record which server terminal key their secret derives from

A terminal's secret is derived from the server's terminal key (stores.pos_signature); to rotate that key
without stopping every register, each terminal names the key generation it was issued under, accepted
while that key is current or before its retire time, and an admin re-issues it under the current key.
Terminals from before this revision were all issued under the first key, `k1` (domain.keys.FIRST_KEY_ID).

The id decides whether a request is accepted, so changing it bumps the store catalogue version like the
other credential columns (0010).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bump_trigger(columns: str) -> str:
    return f"""
        CREATE TRIGGER pos_terminals_bump_store_catalog_version
        AFTER DELETE OR UPDATE OF {columns}
        ON pos_terminals
        FOR EACH STATEMENT EXECUTE FUNCTION bump_store_catalog_version()
        """


def upgrade() -> None:
    op.add_column(
        "pos_terminals", sa.Column("server_key_id", sa.String(length=32), server_default="k1", nullable=False)
    )
    op.execute("DROP TRIGGER pos_terminals_bump_store_catalog_version ON pos_terminals")
    op.execute(_bump_trigger("store_id, key_id, secret_salt, secret_digest, server_key_id, disabled_at"))


def downgrade() -> None:
    op.execute("DROP TRIGGER pos_terminals_bump_store_catalog_version ON pos_terminals")
    op.execute(_bump_trigger("store_id, key_id, secret_salt, secret_digest, disabled_at"))
    op.drop_column("pos_terminals", "server_key_id")
