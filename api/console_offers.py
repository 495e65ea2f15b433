"""The offer catalogue and its performance in the console (marketers and admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import STAFF, Staff
from api.params import DEFAULT_LIMIT, Cursor, PageSize
from api.services import CatalogueRulesDep, ClockDep, OfferProgramDep, Uow
from offers import catalogue, reports
from offers.rules.terms import OfferState
from offers.schemas import OfferChanges, OfferDraft, OfferPage, OfferView, PerformanceReport, StateChange

Days = Annotated[int, QueryParameter(ge=1, le=366, description="decisions of the last N days")]


class ConsoleOfferController(Controller):
    path = "/v1/console/offers"
    tags = ["console: offers"]
    security = [{"staff": []}]
    dependencies = STAFF

    @post(status_code=HTTP_201_CREATED, summary="Draft an offer")
    async def create(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        staff: Staff,
        data: JSONBody[OfferDraft],
    ) -> OfferView:
        return await catalogue.create_offer(uow, catalogue_rules, data, clock.now())

    @get(summary="Offers, newest first")
    async def list_offers(
        self,
        uow: Uow,
        staff: Staff,
        in_state: Annotated[OfferState | None, QueryParameter(name="state")] = None,
        cursor: Cursor = None,
        limit: PageSize = DEFAULT_LIMIT,
    ) -> OfferPage:
        return await catalogue.list_offers(uow, in_state, cursor, limit)

    @get("/performance", summary="Decisions, views, clips, uses, points cost and rates, per offer")
    async def performance(
        self, uow: Uow, clock: ClockDep, offer_program: OfferProgramDep, staff: Staff, days: Days = 30
    ) -> PerformanceReport:
        return await reports.performance(uow, offer_program, days, clock.now())

    @get("/{offer_id:uuid}", summary="One offer")
    async def one_offer(self, uow: Uow, staff: Staff, offer_id: FromPath[uuid.UUID]) -> OfferView:
        return await catalogue.get_offer(uow, offer_id)

    @patch("/{offer_id:uuid}", summary="Change an offer (terms and dates only in a draft)")
    async def change(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        staff: Staff,
        offer_id: FromPath[uuid.UUID],
        data: JSONBody[OfferChanges],
    ) -> OfferView:
        return await catalogue.change_offer(uow, catalogue_rules, offer_id, data, clock.now())

    @post("/{offer_id:uuid}/state", status_code=HTTP_200_OK, summary="Activate, pause or end an offer")
    async def change_state(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        staff: Staff,
        offer_id: FromPath[uuid.UUID],
        data: JSONBody[StateChange],
    ) -> OfferView:
        return await catalogue.change_state(uow, catalogue_rules, offer_id, data.state, clock.now())
