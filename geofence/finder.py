"""The store finder: nearest stores and the regions the app registers as OS geofences."""

from __future__ import annotations

from datetime import datetime

from geofence.catalog import CatalogStore, StoreCatalog
from geofence.schemas import NearbyStore, NearbyStores, Region, RegionSet
from infra.db import UnitOfWork

MIN_REFRESH_M = 500


async def nearby_stores(
    uow: UnitOfWork,
    catalog: StoreCatalog,
    latitude: float,
    longitude: float,
    limit: int,
    radius_m: float | None,
    now: datetime,
) -> NearbyStores:
    index, stores = await catalog.current(uow)
    neighbours = index.nearest(latitude, longitude, limit, radius_m)
    return NearbyStores(items=[_nearby(stores[n.store_id], n.distance_m, now) for n in neighbours])


def _nearby(store: CatalogStore, distance_m: float, now: datetime) -> NearbyStore:
    return NearbyStore(
        store_id=store.store_id,
        code=store.code,
        name=store.name,
        address=store.address,
        latitude=store.latitude,
        longitude=store.longitude,
        distance_m=round(distance_m),
        open_now=store.open_at(now),
        check_in_radius_m=store.check_in_radius_m,
    )


async def region_set(
    uow: UnitOfWork, catalog: StoreCatalog, latitude: float, longitude: float, count: int
) -> RegionSet:
    """The `count` nearest stores as OS geofences (iOS monitors at most 20 regions per app).

    Ask again after moving half the distance to the farthest of them: by then a store not in the set
    may have become one of the nearest.
    """
    index, stores = await catalog.current(uow)
    neighbours = index.nearest(latitude, longitude, count)
    farthest = neighbours[-1].distance_m if neighbours else 0.0
    return RegionSet(
        regions=[
            Region(
                store_id=n.store_id,
                latitude=stores[n.store_id].latitude,
                longitude=stores[n.store_id].longitude,
                radius_m=stores[n.store_id].check_in_radius_m,
            )
            for n in neighbours
        ],
        refresh_after_moving_m=max(MIN_REFRESH_M, round(farthest / 2)),
    )
