"""PostgreSQL through SQLAlchemy 2 async on asyncpg, and the unit of work every use case runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, MetaData
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from domain.errors import DomainError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def pg_enum(values: type[StrEnum], name: str) -> Enum:
    """A PostgreSQL enum stored by value (`"at_risk"`), not by Python member name (`AT_RISK`)."""
    return Enum(values, name=name, values_callable=lambda members: [member.value for member in members])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` URLs and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def create_engine(url: str, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        # No overflow: connections opened past the pool are closed after one use, so under sustained
        # load each request would pay a new connection and cold prepared statements. Requests queue.
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "tsunagari", "timezone": "UTC"}},
    )


class UnitOfWork:
    """One database transaction for one use case: everything it writes commits together or not at all."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_unique(self, row: object, conflict: DomainError) -> None:
        """Insert `row` now; if a unique constraint refuses it (even in a race), raise `conflict`."""
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise conflict from error


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self._sessions() as session:
            try:
                yield UnitOfWork(session)
            except DomainError as error:
                if error.records_outcome:
                    await session.commit()
                else:
                    await session.rollback()
                raise
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
