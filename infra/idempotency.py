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

from sqlalchemy import Integer, LargeBinary, String, delete, select, text
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


async def once(
    uow: UnitOfWork,
    scope: str,
    key: str,
    digest: bytes,
    now: datetime,
    ttl: timedelta,
    effect: Callable[[], Awaitable[tuple[int, bytes]]],
) -> StoredResponse:
    """Run `effect` at most once per (scope, key) and return its (status, body), or the stored one."""
    # Waiting for a concurrent holder of the key is bounded; past it the caller is told to retry.
    await uow.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
    try:
        claimed = await uow.session.execute(
            pg_insert(IdempotencyRecord)
            .values(
                scope=scope,
                key=key,
                request_digest=digest,
                status_code=0,
                response_body=b"",
                created_at=now,
                expires_at=now + ttl,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise RequestInProgress(retry_after_s=RETRY_AFTER_S) from error
        raise
    await uow.session.execute(text("SET LOCAL lock_timeout = 0"))
    if claimed.scalar_one_or_none() is None:
        stored = (
            await uow.session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            )
        ).scalar_one()
        if stored.expires_at <= now:  # past its lifetime and not purged yet: the key is free again
            await uow.session.delete(stored)
            await uow.session.flush()
            return await once(uow, scope, key, digest, now, ttl, effect)
        if stored.request_digest != digest:
            raise IdempotencyKeyReused()
        return StoredResponse(stored.status_code, stored.response_body, replayed=True)
    status_code, body = await effect()
    record = await uow.session.get(IdempotencyRecord, (scope, key))
    assert record is not None
    record.status_code = status_code
    record.response_body = body
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
