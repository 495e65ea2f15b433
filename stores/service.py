"""Store and terminal administration (console and CLI)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, update

from domain.clock import Clock
from domain.geo import validate_polygon
from domain.keys import SigningKey
from domain.time_zones import checked_time_zone
from infra.db import UnitOfWork
from infra.pages import fetch_page
from stores.errors import (
    InvalidOpeningHours,
    InvalidPolygon,
    StoreArchived,
    StoreCodeTaken,
    StoreNotFound,
    TerminalNotFound,
)
from stores.pos_signature import derive_terminal_secret, new_key_id, new_salt, secret_digest
from stores.rules import check_opening_hours
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
from stores.tables import Store, Terminal


def store_view(store: Store) -> StoreView:
    return StoreView(
        id=store.id,
        code=store.code,
        name=store.name,
        address=store.address,
        latitude=store.latitude,
        longitude=store.longitude,
        time_zone=store.time_zone,
        check_in_radius_m=store.check_in_radius_m,
        status=store.status,
        opening_hours=store.opening_hours,
        fence_polygon=[(lat, lon) for lat, lon in store.fence_polygon] if store.fence_polygon else None,
        geofence_enabled=store.geofence_enabled,
        created_at=store.created_at,
        updated_at=store.updated_at,
    )


def terminal_view(terminal: Terminal) -> TerminalView:
    return TerminalView(
        id=terminal.id,
        store_id=terminal.store_id,
        name=terminal.name,
        key_id=terminal.key_id,
        server_key_id=terminal.server_key_id,
        enabled=terminal.disabled_at is None,
        created_at=terminal.created_at,
        last_seen_at=terminal.last_seen_at,
        software_version=terminal.software_version,
    )


async def create_store(uow: UnitOfWork, clock: Clock, draft: StoreDraft) -> StoreView:
    now = clock.now()
    store = Store(
        code=draft.code,
        name=draft.name.strip(),
        address=draft.address.strip(),
        latitude=draft.latitude,
        longitude=draft.longitude,
        check_in_radius_m=draft.check_in_radius_m,
        time_zone=checked_time_zone(draft.time_zone),
        status=draft.status,
        opening_hours=_checked_hours(draft.opening_hours),
        fence_polygon=_checked_polygon(draft.fence_polygon),
        geofence_enabled=draft.geofence_enabled,
        created_at=now,
        updated_at=now,
    )
    await uow.add_unique(store, StoreCodeTaken(f"store code {draft.code} is taken"))
    return store_view(store)


def _checked_hours(hours: Mapping[Any, Sequence[tuple[str, str]]] | None) -> dict[str, Any] | None:
    if hours is None:
        return None
    try:
        check_opening_hours(hours)
        return {day: [list(span) for span in spans] for day, spans in hours.items()}
    except ValueError as error:
        raise InvalidOpeningHours(str(error)) from error


def _checked_polygon(vertices: list[tuple[float, float]] | None) -> list[list[float]] | None:
    if vertices is None:
        return None
    try:
        return [[lat, lon] for lat, lon in validate_polygon(vertices)]
    except ValueError as error:
        raise InvalidPolygon(str(error)) from error


async def list_stores(uow: UnitOfWork, cursor: str | None, limit: int) -> StorePage:
    rows, next_cursor = await fetch_page(
        uow, select(Store).where(Store.archived_at.is_(None)), Store.id, cursor, limit
    )
    return StorePage(items=[store_view(store) for store in rows], next_cursor=next_cursor)


async def get_store(uow: UnitOfWork, store_id: uuid.UUID) -> StoreView:
    return store_view(await _active_store(uow, store_id))


async def update_store(
    uow: UnitOfWork, clock: Clock, store_id: uuid.UUID, changes: StoreChanges
) -> StoreView:
    store = await _active_store(uow, store_id, for_update=True)
    checks: dict[str, Callable[[Any], Any]] = {
        "time_zone": checked_time_zone,
        "opening_hours": _checked_hours,
        "fence_polygon": _checked_polygon,
    }
    for field in StoreChanges.__struct_fields__:
        value = getattr(changes, field)
        if value is not None:
            setattr(store, field, checks.get(field, lambda v: v)(value))
    store.updated_at = clock.now()
    return store_view(store)


async def archive_store(uow: UnitOfWork, clock: Clock, store_id: uuid.UUID) -> None:
    """Archived stores disappear from lists and their terminals stop; history keeps pointing at them."""
    store = await _active_store(uow, store_id, for_update=True)
    now = clock.now()
    store.archived_at = now
    store.updated_at = now
    await uow.session.execute(
        update(Terminal)
        .where(Terminal.store_id == store.id, Terminal.disabled_at.is_(None))
        .values(disabled_at=now)
    )


async def create_terminal(
    uow: UnitOfWork, clock: Clock, terminal_key: SigningKey, store_id: uuid.UUID, draft: TerminalDraft
) -> TerminalCredentials:
    store = await uow.session.get(Store, store_id)
    if store is None:
        raise StoreNotFound()
    if store.archived_at is not None:
        raise StoreArchived()
    terminal = Terminal(
        store_id=store.id, name=draft.name.strip(), key_id=new_key_id(), created_at=clock.now()
    )
    secret = _issue_secret(terminal, terminal_key)
    uow.session.add(terminal)
    await uow.session.flush()
    return TerminalCredentials(terminal=terminal_view(terminal), key_id=terminal.key_id, secret=secret)


async def reissue_terminal_secret(
    uow: UnitOfWork, terminal_key: SigningKey, terminal_id: uuid.UUID
) -> TerminalCredentials:
    """A new secret for the terminal under the current server key, same key id: the old secret stops
    working at once (a lost secret, or a terminal issued under a server key that is retiring)."""
    terminal = await uow.session.get(Terminal, terminal_id, with_for_update=True)
    if terminal is None:
        raise TerminalNotFound()
    store = await uow.session.get(Store, terminal.store_id)
    if store is not None and store.archived_at is not None:
        raise StoreArchived()  # as for creating one: an archived store's registers sign nothing
    secret = _issue_secret(terminal, terminal_key)
    await uow.session.flush()
    return TerminalCredentials(terminal=terminal_view(terminal), key_id=terminal.key_id, secret=secret)


def _issue_secret(terminal: Terminal, terminal_key: SigningKey) -> str:
    """Give the terminal a fresh salt under `terminal_key`; returns the secret, which is not kept."""
    terminal.secret_salt = new_salt()
    terminal.server_key_id = terminal_key.key_id
    secret = derive_terminal_secret(terminal_key.secret, terminal.key_id, terminal.secret_salt)
    terminal.secret_digest = secret_digest(secret)
    return secret


async def list_terminals(
    uow: UnitOfWork, store_id: uuid.UUID, cursor: str | None, limit: int
) -> TerminalPage:
    await _active_store(uow, store_id)
    rows, next_cursor = await fetch_page(
        uow, select(Terminal).where(Terminal.store_id == store_id), Terminal.id, cursor, limit
    )
    return TerminalPage(items=[terminal_view(t) for t in rows], next_cursor=next_cursor)


async def update_terminal(
    uow: UnitOfWork, clock: Clock, terminal_id: uuid.UUID, changes: TerminalChanges
) -> TerminalView:
    terminal = await uow.session.get(Terminal, terminal_id, with_for_update=True)
    if terminal is None:
        raise TerminalNotFound()
    if changes.name is not None:
        terminal.name = changes.name.strip()
    if changes.enabled is True and terminal.disabled_at is not None:
        store = await uow.session.get(Store, terminal.store_id)
        if store is not None and store.archived_at is not None:
            raise StoreArchived("terminals of an archived store cannot be enabled")
        terminal.disabled_at = None
    elif changes.enabled is False and terminal.disabled_at is None:
        terminal.disabled_at = clock.now()
    return terminal_view(terminal)


async def store_id_by_code(uow: UnitOfWork, code: str) -> uuid.UUID:
    store_id = (
        await uow.session.execute(select(Store.id).where(Store.code == code, Store.archived_at.is_(None)))
    ).scalar_one_or_none()
    if store_id is None:
        raise StoreNotFound(f"no active store has code {code}")
    return store_id


async def check_store_known(uow: UnitOfWork, store_id: uuid.UUID) -> None:
    """StoreNotFound unless some store, archived or not, has this id."""
    known = (await uow.session.execute(select(Store.id).where(Store.id == store_id))).scalar_one_or_none()
    if known is None:
        raise StoreNotFound()


async def _active_store(uow: UnitOfWork, store_id: uuid.UUID, *, for_update: bool = False) -> Store:
    query = select(Store).where(Store.id == store_id, Store.archived_at.is_(None))
    if for_update:
        query = query.with_for_update()
    store = (await uow.session.execute(query)).scalar_one_or_none()
    if store is None:
        raise StoreNotFound()
    return store


async def store_names(uow: UnitOfWork, store_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await uow.session.execute(select(Store.id, Store.name).where(Store.id.in_(store_ids)))
    return {store_id: name for store_id, name in rows}


async def store_points(uow: UnitOfWork) -> dict[uuid.UUID, tuple[float, float]]:
    """Where every active store is (latitude, longitude)."""
    rows = await uow.session.execute(
        select(Store.id, Store.latitude, Store.longitude).where(Store.archived_at.is_(None))
    )
    return {store_id: (latitude, longitude) for store_id, latitude, longitude in rows}


async def active_store_ids(uow: UnitOfWork, store_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `store_ids` that name a store not archived."""
    if not store_ids:
        return set()
    rows = await uow.session.execute(
        select(Store.id).where(Store.id.in_(store_ids), Store.archived_at.is_(None))
    )
    return set(rows.scalars())
