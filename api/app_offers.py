"""Personalised offers in the companion app: the list chosen for me, and clipping an offer."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from api.auth import MEMBER, Member
from api.idempotent import IdempotentOperation, idempotent
from api.services import ClockDep, OfferProgramDep, Uow, services_of
from offers import activation, selection
from offers.schemas import Activation, OfferList


class AppOfferController(Controller):
    path = "/v1/app/offers"
    tags = ["app: offers"]
    security = [{"member": []}]
    dependencies = MEMBER

    @get(summary="Offers chosen for me now (pass store_id when at a store), and the ones I clipped")
    async def my_offers(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        offer_program: OfferProgramDep,
        member: Member,
        store_id: FromQuery[uuid.UUID | None] = None,
    ) -> OfferList:
        services = services_of(request.app.state)
        return await selection.offers_for_member(
            uow,
            services.serving_policy,
            services.open_offers,
            offer_program,
            member.member_id,
            store_id,
            services.offer_rng,
            clock.now(),
        )

    @post(
        "/{offer_id:uuid}/activate",
        operation_class=IdempotentOperation,
        summary="Clip an offer so the register applies it; needs an Idempotency-Key",
        responses={200: ResponseSpec(data_container=Activation, description="The clip (or the earlier one)")},
    )
    async def activate(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        member: Member,
        offer_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        now = clock.now()
        return await idempotent(
            request,
            uow,
            f"member:{member.member_id}",
            lambda: activation.activate_offer(uow, member.member_id, offer_id, now),
        )
