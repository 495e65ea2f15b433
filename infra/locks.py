"""PostgreSQL advisory locks held until the end of the transaction.

For serialising one subject's use cases where no single row is the natural thing to lock (a member's
check-ins, the creation of timeline partitions). Two subjects whose keys collide merely wait for each
other; correctness never depends on keys being distinct.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable

from sqlalchemy import text

from infra.db import UnitOfWork

_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, :key)")


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_key(namespace: str, subject: uuid.UUID | str) -> tuple[int, int]:
    """Two signed 32-bit keys: one for what is locked, one for whom."""
    subject_bytes = subject.bytes if isinstance(subject, uuid.UUID) else subject.encode()
    return _int32(zlib.crc32(namespace.encode())), _int32(zlib.crc32(subject_bytes))


async def lock_until_commit(uow: UnitOfWork, namespace: str, subject: uuid.UUID | str) -> None:
    """Wait for, then hold until the transaction ends, the lock on (namespace, subject)."""
    namespace_key, subject_key = lock_key(namespace, subject)
    await uow.session.execute(_LOCK, {"namespace": namespace_key, "key": subject_key})


_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(:namespace, key)) FROM unnest(CAST(:keys AS integer[])) AS key"
)


async def lock_all_until_commit(uow: UnitOfWork, namespace: str, subjects: Iterable[uuid.UUID | str]) -> None:
    """`lock_until_commit` for many subjects in one round trip. Keys are taken in ascending order (unnest
    keeps the array's), the same order every caller uses, so two callers cannot deadlock."""
    keys = sorted({lock_key(namespace, subject)[1] for subject in subjects})
    if keys:
        await uow.session.execute(_LOCK_MANY, {"namespace": lock_key(namespace, "")[0], "keys": keys})
