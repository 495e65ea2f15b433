"""every change to stores bumps the store catalogue version, whoever makes it

The store catalogue (geofence.catalog) and the terminals (stores.pos_auth) are cached per process under
`store_catalog_version`. The store use cases bumped it themselves; a store closed or archived by any
other writer (SQL, a future import) left its terminals accepted by processes that had them cached. A
statement trigger now bumps it for every change to `stores`, as 0010 does for terminals' credentials.

The version also moves to at least the current time in microseconds: a database emptied or restored from
a backup starts again from a version no process has cached (processes compare for equality), where
counting up from 1 again could meet a cached number and keep a stale catalogue.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_BUMP = """
CREATE OR REPLACE FUNCTION bump_store_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO store_catalog_version (id, version) VALUES (1, {first})
    ON CONFLICT (id) DO UPDATE SET version = {next};
    RETURN NULL;
END
$$
"""
_NOW_US = "CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS bigint)"


def upgrade() -> None:
    op.execute(_BUMP.format(first=_NOW_US, next=f"greatest(store_catalog_version.version + 1, {_NOW_US})"))
    op.execute(
        """
        CREATE TRIGGER stores_bump_store_catalog_version
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON stores
        FOR EACH STATEMENT EXECUTE FUNCTION bump_store_catalog_version()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER stores_bump_store_catalog_version ON stores")
    op.execute(_BUMP.format(first="1", next="store_catalog_version.version + 1"))
