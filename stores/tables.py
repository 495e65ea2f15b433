"""Store and POS terminal tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.ids import new_id
from domain.keys import FIRST_KEY_ID
from infra.db import Base, pg_enum
from stores.rules import StoreStatus


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(300))
    latitude: Mapped[float] = mapped_column(Float(precision=53))
    longitude: Mapped[float] = mapped_column(Float(precision=53))
    check_in_radius_m: Mapped[int]
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[StoreStatus] = mapped_column(pg_enum(StoreStatus, "store_status"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]
    opening_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fence_polygon: Mapped[list[list[float]] | None] = mapped_column(
        JSONB
    )  # [[lat, lon], ...] for malls, stations
    geofence_enabled: Mapped[bool] = mapped_column(server_default=text("true"))

    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("check_in_radius_m BETWEEN 50 AND 5000", name="radius_range"),
    )


class StoreCatalogVersion(Base):
    """One row, bumped by triggers in the transaction of every change to stores and to terminals'
    credentials (migrations 0010, 0011): processes caching the store catalogue (the nearest-store index)
    or terminals compare it to know when to reload, consistently with what they read."""

    __tablename__ = "store_catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Terminal(Base):
    """A POS terminal of one store. Its secret is derived, never stored (see stores.pos_signature)."""

    __tablename__ = "pos_terminals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The server terminal key the secret derives from (domain.keys): kept through a key rotation.
    server_key_id: Mapped[str] = mapped_column(String(32), server_default=FIRST_KEY_ID)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    software_version: Mapped[str | None] = mapped_column(String(80))
