"""The store catalogue each process keeps in memory for nearest-store search, rebuilt when stores change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import msgspec
from sqlalchemy import select

from geofence.nearest import IndexedStore, StoreIndex
from infra.db import UnitOfWork
from stores.rules import StoreStatus, is_open_at
from stores.tables import Store, StoreCatalogVersion


class CatalogStore(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    code: str
    name: str
    address: str
    latitude: float
    longitude: float
    check_in_radius_m: int
    time_zone: str
    status: StoreStatus
    opening_hours: dict[str, list[list[str]]] | None

    def open_at(self, at: datetime) -> bool:
        return is_open_at(self.status, self.opening_hours, self.time_zone, at)


class StoreCatalog:
    """Active stores and their spatial index, as of a catalogue version.

    Every read compares the version row (bumped in the same transaction as any store change), so a
    change is seen by the next request of every process, without a cache to invalidate by hand.
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._stores: dict[uuid.UUID, CatalogStore] = {}
        self._index = StoreIndex([])
        self._lock = asyncio.Lock()

    async def current(self, uow: UnitOfWork) -> tuple[StoreIndex, dict[uuid.UUID, CatalogStore]]:
        version = await self._stored_version(uow)
        if version != self._version:
            async with self._lock:
                if version != self._version:
                    await self._reload(uow, version)
        return self._index, self._stores

    async def _stored_version(self, uow: UnitOfWork) -> int:
        row = await uow.session.get(StoreCatalogVersion, 1)
        return row.version if row is not None else 0

    async def _reload(self, uow: UnitOfWork, version: int) -> None:
        rows = (await uow.session.execute(select(Store).where(Store.archived_at.is_(None)))).scalars()
        stores = {
            s.id: CatalogStore(
                store_id=s.id,
                code=s.code,
                name=s.name,
                address=s.address,
                latitude=s.latitude,
                longitude=s.longitude,
                check_in_radius_m=s.check_in_radius_m,
                time_zone=s.time_zone,
                status=s.status,
                opening_hours=s.opening_hours,
            )
            for s in rows
        }
        # Building the index is CPU work of a few hundred milliseconds for 50,000 stores: off the loop.
        index = await asyncio.to_thread(
            StoreIndex, [IndexedStore(s.store_id, s.latitude, s.longitude) for s in stores.values()]
        )
        self._stores, self._index, self._version = stores, index, version
