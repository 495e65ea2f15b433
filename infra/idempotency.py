"""Idempotency keys: a retried write gets the stored response instead of a second effect.

The key row is written in the same transaction as the effect. A concurrent request with the same key
blocks on the key's unique index until the first commits (then replays its response) or rolls back
(then runs itself): exactly one effect, with no polling. Successful responses are stored; a failed
request leaves nothing behind (its retry is judged afresh) unless its failure is itself a kept fact,
such as a rejected check-in: then its problem response is stored (`keep_failure`) and replayed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from domain.errors import Conflict, DomainError, InvalidInput
from infra.db import Base, Database, UnitOfWork

KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,100}$"
LOCK_WAIT = "10s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout that expired
RETRY_AFTER_S = 2


class IdempotencyKeyRequired(DomainError):
    code = "idempotency_key_required"
    status = 400
    title = "This write needs an Idempotency-Key header (8-100 characters of A-Z a-z 0-9 . _ : -)"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used with a different request"


class RequestInProgress(Conflict):
    code = "request_in_progress"
    title = "A request with this Idempotency-Key is still being processed; retry shortly"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    replayed: bool


def request_digest(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(method.upper().encode() + b"\n" + path.encode() + b"\n" + body).digest()


# The claim waits at most LOCK_WAIT for a concurrent holder of the key, and only the claim: the limit
# is set in the statement before its row is inserted, and lifted in RETURNING once it is (or, when the
# key was taken, by the read of the stored response).
_NO_LOCK_WAIT_LIMIT = func.set_config("lock_timeout", "0", True)
# Core statements on the table, built once: no ORM unit of work on the hot path.
_KEYS = cast(Table, IdempotencyRecord.__table__)
_THIS_KEY = (_KEYS.c.scope == bindparam("key_scope"), _KEYS.c.key == bindparam("key_name"))
_CLAIM = (
    pg_insert(_KEYS)
    .from_select(
        ["scope", "key", "request_digest", "status_code", "response_body", "created_at", "expires_at"],
        select(
            bindparam("key_scope", type_=String),
            bindparam("key_name", type_=String),
            bindparam("digest", type_=LargeBinary),
            literal(0, Integer),
            literal(b"", LargeBinary),
            bindparam("claimed_at", type_=DateTime(timezone=True)),
            bindparam("free_at", type_=DateTime(timezone=True)),
        ).where(func.set_config("lock_timeout", bindparam("lock_wait", type_=String), True).is_not(None)),
    )
    .on_conflict_do_nothing()
    .returning(_KEYS.c.key, _NO_LOCK_WAIT_LIMIT)
)
_STORED = select(
    _KEYS.c.request_digest,
    _KEYS.c.status_code,
    _KEYS.c.response_body,
    _KEYS.c.expires_at,
    _NO_LOCK_WAIT_LIMIT,
).where(*_THIS_KEY)
_FREE_EXPIRED = delete(_KEYS).where(*_THIS_KEY)
_STORE_RESPONSE = (
    update(_KEYS)
    .where(*_THIS_KEY)
    .values(status_code=bindparam("answer_status"), response_body=bindparam("answer_body"))
)


async def once(
    uow: UnitOfWork,
    scope: str,
    key: str,
    digest: bytes,
    now: datetime,
    ttl: timedelta,
    effect: Callable[[], Awaitable[tuple[int, bytes]]],
) -> StoredResponse:
    """Run `effect` at most once per (scope, key) and return its (status, body), or the stored one.

    Two round trips of its own: the claim before the effect, the response stored after it.
    """
    named = {"key_scope": scope, "key_name": key}
    try:
        claimed = await uow.session.execute(
            _CLAIM,
            {**named, "digest": digest, "claimed_at": now, "free_at": now + ttl, "lock_wait": LOCK_WAIT},
        )
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise RequestInProgress(retry_after_s=RETRY_AFTER_S) from error
        raise
    if claimed.first() is None:
        stored = (await uow.session.execute(_STORED, named)).one_or_none()
        if stored is None:  # purged (past its lifetime) since the claim met it: the key is free
            return await once(uow, scope, key, digest, now, ttl, effect)
        if stored.expires_at <= now:  # past its lifetime and not purged yet: the key is free again
            await uow.session.execute(_FREE_EXPIRED, named)
            return await once(uow, scope, key, digest, now, ttl, effect)
        if stored.request_digest != digest:
            raise IdempotencyKeyReused()
        return StoredResponse(stored.status_code, stored.response_body, replayed=True)
    status_code, body = await effect()
    await uow.session.execute(_STORE_RESPONSE, {**named, "answer_status": status_code, "answer_body": body})
    return StoredResponse(status_code, body, replayed=False)


async def keep_failure(
    uow: UnitOfWork,
    scope: str,
    key: str,
    digest: bytes,
    now: datetime,
    ttl: timedelta,
    status_code: int,
    body: bytes,
) -> bool:
    """Store a failed request's answer under its key (in the transaction that keeps the failure's outcome);
    False when a concurrent request with the same key got in first after the rollback: its answer stands.
    """
    stored = await uow.session.execute(
        pg_insert(IdempotencyRecord)
        .values(
            scope=scope,
            key=key,
            request_digest=digest,
            status_code=status_code,
            response_body=body,
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    return stored.scalar_one_or_none() is not None


async def purge_expired(db: Database, now: datetime) -> int:
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        )
    return int(getattr(result, "rowcount", 0) or 0)
