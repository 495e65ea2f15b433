"""POS terminal endpoints. Every request is signed; the store is always the terminal's own."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK

from api.auth import TERMINAL
from domain.clock import Clock
from infra.db import UnitOfWork
from stores.pos_auth import AuthenticatedTerminal, record_heartbeat, terminal_identity
from stores.schemas import Heartbeat, TerminalIdentity


class PosController(Controller):
    path = "/v1/pos"
    tags = ["pos"]
    security = [{"pos_signature": []}]
    dependencies = TERMINAL

    @get("/terminal", summary="This terminal, its store and the server clock")
    async def identity(
        self, uow: UnitOfWork, clock: Clock, terminal: AuthenticatedTerminal
    ) -> TerminalIdentity:
        return await terminal_identity(uow, clock, terminal)

    @post(
        "/heartbeat", status_code=HTTP_200_OK, summary="Report the terminal alive, with its software version"
    )
    async def heartbeat(
        self, uow: UnitOfWork, clock: Clock, terminal: AuthenticatedTerminal, data: Heartbeat
    ) -> TerminalIdentity:
        return await record_heartbeat(uow, clock, terminal, data)
