"""Authenticating signed POS terminal requests; and what a terminal may ask about itself.

Terminals are cached per process with the store catalogue version (`store_catalog_version`, bumped by
triggers in the transaction of every change to a store and to a terminal's credentials or enabled
state, whoever makes it), so a signed request costs one small read when nothing changed, and a disabled
terminal or store is refused from the next request on, in every process.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy import bindparam, select

from domain.clock import Clock
from domain.keys import KeyRing
from infra.db import UnitOfWork
from infra.redis import RedisKeys
from stores.errors import (
    PosNonceInvalid,
    PosNonceRequired,
    PosRequestReplayed,
    PosSignatureInvalid,
    PosSignatureMissing,
    PosTerminalDisabled,
    PosTerminalUnknown,
    PosTimestampOutOfWindow,
)
from stores.pos_signature import (
    canonical_request,
    derive_terminal_secret,
    nonce_well_formed,
    secret_digest,
    signature_matches,
    timestamp_within,
)
from stores.rules import accepts_pos_requests
from stores.schemas import Heartbeat, TerminalIdentity
from stores.tables import Store, StoreCatalogVersion, Terminal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path_with_query: str
    body: bytes
    key_id: str | None
    timestamp: str | None
    signature: str | None
    nonce: str | None = None


@dataclass(frozen=True)
class _KnownTerminal:
    """What authenticating a terminal needs, as of a store catalogue version."""

    terminal_id: uuid.UUID
    store_id: uuid.UUID
    key_id: str
    secret_salt: bytes
    secret_digest: bytes
    server_key_id: str
    accepts_requests: bool


_CATALOG_VERSION = select(StoreCatalogVersion.version).where(StoreCatalogVersion.id == 1)
_TERMINAL = (
    select(
        Terminal.id,
        Terminal.store_id,
        Terminal.key_id,
        Terminal.secret_salt,
        Terminal.secret_digest,
        Terminal.server_key_id,
        Terminal.disabled_at,
        Store.status,
        Store.archived_at,
    )
    .join(Store, Store.id == Terminal.store_id)
    .where(Terminal.key_id == bindparam("key_id"))
)


@dataclass(frozen=True)
class AuthenticatedTerminal:
    """The only identity a POS endpoint acts for: its store comes from here, never from the request body."""

    terminal_id: uuid.UUID
    store_id: uuid.UUID
    key_id: str


class PosAuthenticator:
    def __init__(
        self,
        terminal_keys: KeyRing,
        skew_s: int,
        redis: RedisKeys,
        clock: Clock,
        *,
        require_nonce: bool = False,
    ) -> None:
        self._terminal_keys = terminal_keys
        self._skew_s = skew_s
        self._require_nonce = require_nonce
        self._redis = redis
        self._clock = clock
        self._version: int | None = None
        self._terminals: dict[str, _KnownTerminal] = {}  # by key id, as of `_version`

    async def authenticate(self, uow: UnitOfWork, request: SignedRequest) -> AuthenticatedTerminal:
        if not (request.key_id and request.timestamp and request.signature):
            raise PosSignatureMissing()
        if request.nonce is None and self._require_nonce:
            raise PosNonceRequired()
        if request.nonce is not None and not nonce_well_formed(request.nonce):
            raise PosNonceInvalid()
        if not timestamp_within(request.timestamp, self._clock.now(), self._skew_s):
            raise PosTimestampOutOfWindow(server_time=int(self._clock.now().timestamp()))
        terminal = await self._terminal(uow, request.key_id)
        if terminal is None:
            raise PosTerminalUnknown()
        server_key = self._terminal_keys.usable(terminal.server_key_id, self._clock.now())
        if server_key is None:
            log.error(
                "terminal %s was issued under the retired or unknown terminal key %r; re-issue its secret",
                terminal.key_id,
                terminal.server_key_id,
            )
            raise PosSignatureInvalid()
        secret = derive_terminal_secret(server_key.secret, terminal.key_id, terminal.secret_salt)
        if secret_digest(secret) != terminal.secret_digest:
            log.error(
                "terminal %s was issued under another TSUNAGARI_TERMINAL_KEY with id %r; re-issue its secret",
                terminal.key_id,
                terminal.server_key_id,
            )
            raise PosSignatureInvalid()
        canonical = canonical_request(
            request.method, request.path_with_query, request.timestamp, request.body, request.nonce
        )
        if not signature_matches(secret, canonical, request.signature):
            raise PosSignatureInvalid()
        if not terminal.accepts_requests:
            raise PosTerminalDisabled()
        await self._refuse_replay(terminal.key_id, request.signature, request.nonce)
        return AuthenticatedTerminal(
            terminal_id=terminal.terminal_id, store_id=terminal.store_id, key_id=terminal.key_id
        )

    async def _terminal(self, uow: UnitOfWork, key_id: str) -> _KnownTerminal | None:
        """The terminal with `key_id`, from the cache while the catalogue version stays the same. The
        version is read first, so what is cached is never older than the version it is cached under."""
        # Requests of this process interleave at each await: one that read an older version may be
        # loading while another has moved the cache on; it uses what it loaded but does not cache it.
        version = (await uow.session.execute(_CATALOG_VERSION)).scalar_one_or_none() or 0
        if version != self._version:
            self._version, self._terminals = version, {}
        known = self._terminals.get(key_id)
        if known is None:
            row = (await uow.session.execute(_TERMINAL, {"key_id": key_id})).one_or_none()
            if row is None:
                return None  # unknown key ids are not cached: anyone can send those
            known = _KnownTerminal(
                terminal_id=row.id,
                store_id=row.store_id,
                key_id=row.key_id,
                secret_salt=row.secret_salt,
                secret_digest=row.secret_digest,
                server_key_id=row.server_key_id,
                accepts_requests=accepts_pos_requests(
                    row.status, row.archived_at is not None, row.disabled_at is not None
                ),
            )
            if self._version == version:
                self._terminals[key_id] = known
        return known

    async def _refuse_replay(self, key_id: str, signature: str, nonce: str | None) -> None:
        """Each nonce (each signature, from a terminal that sends none) is accepted once while its
        timestamp is in the window: a nonce seen again is refused even under a new timestamp.

        When Redis is down the guard is skipped (logged): writes stay exactly-once through their
        idempotency keys, and a store must keep selling during a cache outage.
        """
        if nonce is not None:
            key = self._redis.key("pos-nonce", key_id, nonce)
        else:
            key = self._redis.key("pos-sig", key_id, signature.strip().lower())
        try:
            first = await self._redis.client.set(key, b"1", nx=True, ex=2 * self._skew_s + 1)
        except RedisError as error:
            log.warning("POS replay guard skipped: redis unavailable (%s)", error)
            return
        if not first:
            raise PosRequestReplayed()


async def terminal_identity(
    uow: UnitOfWork, clock: Clock, terminal: AuthenticatedTerminal
) -> TerminalIdentity:
    store = await uow.session.get(Store, terminal.store_id)
    assert store is not None  # authenticate() just joined the terminal to its store
    return TerminalIdentity(
        terminal_id=terminal.terminal_id,
        key_id=terminal.key_id,
        store_id=store.id,
        store_code=store.code,
        store_name=store.name,
        store_time_zone=store.time_zone,
        server_time=clock.now(),
    )


async def record_heartbeat(
    uow: UnitOfWork, clock: Clock, terminal: AuthenticatedTerminal, heartbeat: Heartbeat
) -> TerminalIdentity:
    row = await uow.session.get(Terminal, terminal.terminal_id)
    assert row is not None
    row.last_seen_at = clock.now()
    row.software_version = heartbeat.software_version
    return await terminal_identity(uow, clock, terminal)
