"""POS terminal endpoints. Every request is signed; the store is always the terminal's own."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import TERMINAL, Terminal
from api.idempotent import IdempotentOperation, idempotent
from api.services import ClockDep, ProgramDep, SettingsDep, Uow
from points import register as at_register
from points import returns, sales
from points.schemas import (
    PurchaseRequest,
    PurchaseResult,
    RefundRequest,
    RefundResult,
    ResolvedMember,
    ResolveRequest,
)
from stores.pos_auth import record_heartbeat, terminal_identity
from stores.schemas import Heartbeat, TerminalIdentity

IDEMPOTENCY_NOTE = (
    "Requires an Idempotency-Key header; a retry with the same key and body gets the same response."
)


class PosController(Controller):
    path = "/v1/pos"
    tags = ["pos"]
    security = [{"pos_signature": []}]
    dependencies = TERMINAL

    @get("/terminal", summary="This terminal, its store and the server clock")
    async def identity(self, uow: Uow, clock: ClockDep, terminal: Terminal) -> TerminalIdentity:
        return await terminal_identity(uow, clock, terminal)

    @post(
        "/heartbeat", status_code=HTTP_200_OK, summary="Report the terminal alive, with its software version"
    )
    async def heartbeat(
        self, uow: Uow, clock: ClockDep, terminal: Terminal, data: JSONBody[Heartbeat]
    ) -> TerminalIdentity:
        return await record_heartbeat(uow, clock, terminal, data)

    @post(
        "/members/resolve", status_code=HTTP_200_OK, summary="Scanned member code -> member, stage, balances"
    )
    async def resolve_member(
        self,
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        settings: SettingsDep,
        terminal: Terminal,
        data: JSONBody[ResolveRequest],
    ) -> ResolvedMember:
        return await at_register.resolve_member(
            uow, program, settings.key_ring("code_signing_key"), data.code, clock.now()
        )

    @post(
        "/purchases",
        status_code=HTTP_201_CREATED,
        operation_class=IdempotentOperation,
        summary="Post a sale: redeem and earn points (anonymous sales too)",
        description=IDEMPOTENCY_NOTE,
        responses={
            HTTP_201_CREATED: ResponseSpec(data_container=PurchaseResult, description="The sale's points")
        },
    )
    async def post_purchase(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        settings: SettingsDep,
        terminal: Terminal,
        data: JSONBody[PurchaseRequest],
    ) -> Response[bytes]:
        register = at_register.Register(terminal.store_id, terminal.terminal_id, clock.now())
        code_keys = settings.key_ring("code_signing_key")
        return await idempotent(
            request,
            uow,
            f"pos:{terminal.terminal_id}",
            lambda: sales.record_purchase(uow, program, code_keys, register, data),
            HTTP_201_CREATED,
        )

    @post(
        "/refunds",
        status_code=HTTP_201_CREATED,
        operation_class=IdempotentOperation,
        summary="Post a full or partial refund of a sale of this store",
        description=IDEMPOTENCY_NOTE,
        responses={
            HTTP_201_CREATED: ResponseSpec(data_container=RefundResult, description="What was reversed")
        },
    )
    async def post_refund(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        terminal: Terminal,
        data: JSONBody[RefundRequest],
    ) -> Response[bytes]:
        register = at_register.Register(terminal.store_id, terminal.terminal_id, clock.now())
        return await idempotent(
            request,
            uow,
            f"pos:{terminal.terminal_id}",
            lambda: returns.record_refund(uow, program, register, data),
            HTTP_201_CREATED,
        )
