"""Every table the migrations manage, gathered so Alembic can compare them with the database."""

from __future__ import annotations

from sqlalchemy import MetaData

import accounts.tables
import geofence.tables
import infra.idempotency
import offers.tables
import points.tables
import push.tables
import stores.tables
import timeline.tables
from infra.db import Base
from timeline.partitions import is_partition

TABLE_MODULES = (
    accounts.tables,
    stores.tables,
    timeline.tables,
    points.tables,
    infra.idempotency,
    geofence.tables,
    offers.tables,
    push.tables,
)


def target_metadata() -> MetaData:
    return Base.metadata


def include_object(
    item: object, name: str | None, type_: str, reflected: bool, compare_to: object | None
) -> bool:
    """Leave the timeline's monthly partitions (made at run time, not by models) out of comparisons."""
    return not (type_ == "table" and reflected and name is not None and is_partition(name))
