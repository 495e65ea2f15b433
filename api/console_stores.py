"""Store and POS terminal administration in the console."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import ADMIN, STAFF, Admin, Staff
from api.params import DEFAULT_LIMIT, Cursor, PageSize
from api.services import ClockDep, SettingsDep, Uow
from stores import service
from stores.schemas import (
    StoreChanges,
    StoreDraft,
    StorePage,
    StoreView,
    TerminalChanges,
    TerminalCredentials,
    TerminalDraft,
    TerminalPage,
    TerminalView,
)


class ConsoleStoreController(Controller):
    path = "/v1/console"
    tags = ["console: stores"]
    security = [{"staff": []}]

    @get("/stores", dependencies=STAFF, summary="List stores")
    async def list_stores(
        self,
        uow: Uow,
        staff: Staff,
        cursor: Cursor = None,
        limit: PageSize = DEFAULT_LIMIT,
    ) -> StorePage:
        return await service.list_stores(uow, cursor, limit)

    @post("/stores", status_code=HTTP_201_CREATED, dependencies=ADMIN, summary="Create a store")
    async def create_store(
        self, uow: Uow, clock: ClockDep, admin: Admin, data: JSONBody[StoreDraft]
    ) -> StoreView:
        return await service.create_store(uow, clock, data)

    @get("/stores/{store_id:uuid}", dependencies=STAFF, summary="One store")
    async def get_store(self, uow: Uow, staff: Staff, store_id: FromPath[uuid.UUID]) -> StoreView:
        return await service.get_store(uow, store_id)

    @patch("/stores/{store_id:uuid}", dependencies=ADMIN, summary="Change a store")
    async def update_store(
        self,
        uow: Uow,
        clock: ClockDep,
        admin: Admin,
        store_id: FromPath[uuid.UUID],
        data: JSONBody[StoreChanges],
    ) -> StoreView:
        return await service.update_store(uow, clock, store_id, data)

    @delete(
        "/stores/{store_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        dependencies=ADMIN,
        summary="Archive a store and disable its terminals",
    )
    async def archive_store(
        self, uow: Uow, clock: ClockDep, admin: Admin, store_id: FromPath[uuid.UUID]
    ) -> None:
        await service.archive_store(uow, clock, store_id)

    @post(
        "/stores/{store_id:uuid}/terminals",
        status_code=HTTP_201_CREATED,
        dependencies=ADMIN,
        summary="Create a POS terminal; its secret is shown only in this response",
    )
    async def create_terminal(
        self,
        uow: Uow,
        clock: ClockDep,
        settings: SettingsDep,
        admin: Admin,
        store_id: FromPath[uuid.UUID],
        data: JSONBody[TerminalDraft],
    ) -> TerminalCredentials:
        return await service.create_terminal(
            uow, clock, settings.key_ring("terminal_key").current, store_id, data
        )

    @get("/stores/{store_id:uuid}/terminals", dependencies=ADMIN, summary="A store's POS terminals")
    async def list_terminals(
        self,
        uow: Uow,
        admin: Admin,
        store_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: PageSize = DEFAULT_LIMIT,
    ) -> TerminalPage:
        return await service.list_terminals(uow, store_id, cursor, limit)

    @patch(
        "/terminals/{terminal_id:uuid}", dependencies=ADMIN, summary="Rename, disable or re-enable a terminal"
    )
    async def update_terminal(
        self,
        uow: Uow,
        clock: ClockDep,
        admin: Admin,
        terminal_id: FromPath[uuid.UUID],
        data: JSONBody[TerminalChanges],
    ) -> TerminalView:
        return await service.update_terminal(uow, clock, terminal_id, data)

    @post(
        "/terminals/{terminal_id:uuid}/secret",
        status_code=HTTP_200_OK,
        dependencies=ADMIN,
        summary="Re-issue a terminal's secret under the current terminal key; the old secret stops at once",
    )
    async def reissue_terminal_secret(
        self, uow: Uow, settings: SettingsDep, admin: Admin, terminal_id: FromPath[uuid.UUID]
    ) -> TerminalCredentials:
        return await service.reissue_terminal_secret(
            uow, settings.key_ring("terminal_key").current, terminal_id
        )
