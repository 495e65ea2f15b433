"""Offers in the console: the catalogue (create, edit, activate, pause, end), performance, and the
policy's current choice probabilities."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from api.console import plots
from api.console.forms import (
    SEGMENT_SLOTS,
    FormInvalid,
    Parser,
    body_of,
    form_values,
    iso_date,
    nested,
    optional_choice,
    plain_text,
    segment_fields,
    segment_values,
    values_of,
    whole_number,
)
from api.console.segments import store_choices
from api.console.web import (
    CONSOLE_FORM,
    CONSOLE_USER,
    ConsoleFormDep,
    ConsoleUserDep,
    page,
    problem_of,
    see_other,
)
from api.services import CatalogueRulesDep, ClockDep, OfferProgramDep, ProgramDep, Uow, services_of
from domain.errors import DomainError
from offers import catalogue, reports
from offers.choice import choice_probabilities
from offers.rules.terms import OfferState
from offers.schemas import OfferChanges, OfferDraft, OfferView

OFFERS_LISTED = 100
PERFORMANCE_DAYS = 30
TERMS_KEYS = {
    "multiplier": ("percent", "category", "min_spend_minor"),
    "bonus_points": ("points", "category", "sku"),
    "visit_bonus": ("points", "min_spend_minor"),
    "amount_off": ("amount_off_minor", "min_spend_minor"),
}
CREATIVE: dict[str, Parser] = {
    "name": plain_text,
    "title": plain_text,
    "body": plain_text,
    "image_url": plain_text,
    "per_member_limit": whole_number,
    "budget_redemptions": whole_number,
    "budget_points": whole_number,
}
TERMS: dict[str, Parser] = {
    "terms.kind": plain_text,
    "terms.percent": whole_number,
    "terms.points": whole_number,
    "terms.category": plain_text,
    "terms.sku": plain_text,
    "terms.min_spend_minor": whole_number,
    "terms.amount_off_minor": whole_number,
    "valid_from": iso_date,
    "valid_until": iso_date,
}


def offer_body(form: Any, draft: bool) -> dict[str, Any]:
    """The body the form makes; terms, dates, stores and audience only while the offer is a draft."""
    if not draft:
        return dict(nested(form, CREATIVE))
    audience, audience_lists = segment_fields("audience", trait_only=True)
    body = dict(nested(form, CREATIVE | TERMS | audience, audience_lists | {"store_ids": plain_text}))
    terms = body.get("terms", {})
    kind = terms.get("kind", "")
    if kind not in TERMS_KEYS:
        raise FormInvalid("choose what the offer gives", "terms.kind")
    body["terms"] = {k: v for k, v in terms.items() if k == "kind" or k in TERMS_KEYS[kind]}
    body.setdefault("audience", {})
    body.setdefault("store_ids", [])
    return body


def offer_values(view: OfferView) -> dict[str, list[str]]:
    stored = msgspec.to_builtins(view)
    audience = stored.pop("audience")
    values = values_of(
        {k: v for k, v in stored.items() if k in CREATIVE or k in ("valid_from", "valid_until")}
    )
    values |= values_of({"terms": stored["terms"]})
    values["store_ids"] = [str(s) for s in view.store_ids]
    return values | segment_values("audience", audience["all"])


class ConsoleOfferPages(Controller):
    path = "/console/offers"
    include_in_schema = False
    dependencies = CONSOLE_USER

    @get()
    async def catalogue_page(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        offer_program: OfferProgramDep,
        console_user: ConsoleUserDep,
    ) -> Response[str]:
        now = clock.now()
        listed = await catalogue.list_offers(uow, None, None, OFFERS_LISTED)
        performance = await reports.performance(uow, offer_program, PERFORMANCE_DAYS, now)
        services = services_of(request.app.state)
        choice = await choice_probabilities(
            uow, services.serving_policy, services.open_offers, offer_program, program.time_zone, now
        )
        chances = choice.offers
        return page(
            "offers.html",
            console_user,
            section="offers",
            listed=listed,
            performance=performance,
            days=PERFORMANCE_DAYS,
            chances=chances,
            choice=choice,
            chances_plot=plots.bars(
                "Chance of being the first offer shown (policy now)",
                [(c.name, c.mean_probability) for c in chances],
                percent=True,
            )
            if chances
            else None,
            zone=program.time_zone,
        )

    @get("/new")
    async def new_offer(self, uow: Uow, console_user: ConsoleUserDep) -> Response[str]:
        return await self._form(uow, console_user, None, {}, None)

    @post(dependencies=CONSOLE_FORM)
    async def create(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
    ) -> Response[Any]:
        try:
            draft = body_of(OfferDraft, offer_body(console_form, draft=True))
            view = await catalogue.create_offer(uow, catalogue_rules, draft, clock.now())
        except DomainError as error:
            return await self._form(uow, console_user, None, form_values(console_form), error)
        return see_other(f"/console/offers/{view.id}")

    @get("/{offer_id:uuid}")
    async def one_offer(
        self, uow: Uow, console_user: ConsoleUserDep, offer_id: FromPath[uuid.UUID]
    ) -> Response[str]:
        view = await catalogue.get_offer(uow, offer_id)
        return await self._form(uow, console_user, view, offer_values(view), None)

    @post("/{offer_id:uuid}", dependencies=CONSOLE_FORM)
    async def change(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
        offer_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        view = await catalogue.get_offer(uow, offer_id)
        try:
            changes = body_of(OfferChanges, offer_body(console_form, draft=view.state is OfferState.DRAFT))
            await catalogue.change_offer(uow, catalogue_rules, offer_id, changes, clock.now())
        except DomainError as error:
            return await self._form(uow, console_user, view, form_values(console_form), error)
        return see_other(f"/console/offers/{offer_id}")

    @post("/{offer_id:uuid}/state", dependencies=CONSOLE_FORM)
    async def change_state(
        self,
        uow: Uow,
        clock: ClockDep,
        catalogue_rules: CatalogueRulesDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
        offer_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        wanted = console_form.get("state")
        try:
            state = optional_choice(OfferState, wanted if isinstance(wanted, str) else "", "state")
            if state is None:
                raise FormInvalid("choose the offer's new state", "state")
            await catalogue.change_state(uow, catalogue_rules, offer_id, state, clock.now())
        except DomainError as error:
            view = await catalogue.get_offer(uow, offer_id)
            return await self._form(uow, console_user, view, offer_values(view), error)
        return see_other(f"/console/offers/{offer_id}")

    async def _form(
        self,
        uow: Uow,
        user: Any,
        view: OfferView | None,
        values: dict[str, list[str]],
        error: DomainError | None,
    ) -> Response[str]:
        return page(
            "offer_form.html",
            user,
            status=error.status if error else 200,
            section="offers",
            offer=view,
            slots=SEGMENT_SLOTS,
            values=values,
            stores=await store_choices(uow),
            problem=problem_of(error) if error else None,
        )
