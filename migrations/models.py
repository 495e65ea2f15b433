"""Every table the migrations manage, gathered so Alembic can compare them with the database."""

from __future__ import annotations

from sqlalchemy import MetaData

import accounts.tables
import stores.tables
from infra.db import Base

TABLE_MODULES = (accounts.tables, stores.tables)


def target_metadata() -> MetaData:
    return Base.metadata
