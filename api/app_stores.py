"""Store finder and check-ins in the companion app."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter

from api.auth import MEMBER, Member
from api.idempotent import IdempotentOperation, idempotency_key, idempotent
from api.services import ClockDep, ProgramDep, Uow, services_of
from api.transactions import ONLY_READS
from geofence import check_ins, finder
from geofence.schemas import CheckInRequest, CheckInResult, NearbyStores, RegionSet

Lat = Annotated[float, QueryParameter(ge=-90.0, le=90.0, description="latitude, WGS-84 degrees")]
Lon = Annotated[float, QueryParameter(ge=-180.0, le=180.0, description="longitude, WGS-84 degrees")]
Limit = Annotated[int, QueryParameter(ge=1, le=50, description="how many stores")]
Radius = Annotated[int | None, QueryParameter(ge=1, le=1_000_000, description="only stores within, metres")]
RegionCount = Annotated[int, QueryParameter(ge=1, le=100, description="how many regions (iOS monitors 20)")]


class AppStoreController(Controller):
    path = "/v1/app"
    tags = ["app: stores and check-ins"]
    security = [{"member": []}]
    dependencies = MEMBER

    @get(
        "/stores/nearby",
        summary="Stores nearest to a point, with distance and open-now status",
        opt=ONLY_READS,
    )
    async def nearby(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        member: Member,
        lat: Lat,
        lon: Lon,
        limit: Limit = 10,
        radius_m: Radius = None,
    ) -> NearbyStores:
        catalog = services_of(request.app.state).store_catalog
        return await finder.nearby_stores(uow, catalog, lat, lon, limit, radius_m, clock.now())

    @get(
        "/stores/regions",
        summary="The nearest stores to register as OS geofences, and when to refresh",
        opt=ONLY_READS,
    )
    async def regions(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        member: Member,
        lat: Lat,
        lon: Lon,
        count: RegionCount = 20,
    ) -> RegionSet:
        catalog = services_of(request.app.state).store_catalog
        return await finder.region_set(uow, catalog, lat, lon, count)

    @post(
        "/check-ins",
        operation_class=IdempotentOperation,
        summary="Check in at a store (once per store and local day); needs an Idempotency-Key",
        status_code=200,
        responses={
            200: ResponseSpec(data_container=CheckInResult, description="The check-in (or the day's first)")
        },
    )
    async def check_in(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        member: Member,
        data: JSONBody[CheckInRequest],
    ) -> Response[bytes]:
        services = services_of(request.app.state)
        now = clock.now()
        # Counted before anything else but the request's own form (a request without a key is no attempt):
        # an attempt over the limit touches nothing in PostgreSQL.
        idempotency_key(request)
        await services.check_in_limits.admit(member.member_id, now)
        return await idempotent(
            request,
            uow,
            f"member:{member.member_id}",
            lambda: check_ins.check_in(uow, services.check_in_policy, program, member.member_id, data, now),
        )
