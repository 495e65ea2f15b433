"""POS terminal endpoints. Every request is signed; the store is always the terminal's own."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from api.auth import TERMINAL, Terminal
from api.services import ClockDep, Uow
from stores.pos_auth import record_heartbeat, terminal_identity
from stores.schemas import Heartbeat, TerminalIdentity


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
