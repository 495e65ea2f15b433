"""PostgreSQL through SQLAlchemy 2 async on asyncpg, and the unit of work every use case runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, MetaData, event
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

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


def create_engine(url: str, pool_size: int, *, read_only: bool = False) -> AsyncEngine:
    """An engine with its own pool. A `read_only` one runs each statement on its own, with no BEGIN or
    COMMIT (so a one-statement read is one round trip), and the server refuses any write on it."""
    server_settings = {"application_name": "tsunagari", "timezone": "UTC"}
    if read_only:
        server_settings["default_transaction_read_only"] = "on"
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        # No overflow: connections opened past the pool are closed after one use, so under sustained
        # load each request would pay a new connection and cold prepared statements. Requests queue.
        max_overflow=0,
        pool_timeout=30,
        connect_args={"server_settings": server_settings},
        **({"isolation_level": "AUTOCOMMIT"} if read_only else {}),
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Hand out no pooled connection the server has closed, without asking the server.

    A terminated backend (`pg_terminate_backend`, a PostgreSQL restart or crash, an idle timeout) says
    so and closes its socket; asyncpg reads that while the connection sits in the pool and marks it
    closed. Raising here makes the pool discard it and check out a fresh connection instead, once, before
    the unit of work has sent anything. This replaces `pool_pre_ping`, which costs three round trips per
    checkout on asyncpg (BEGIN, a ping, ROLLBACK). A connection that breaks after its transaction began
    is not retried: the server rolls that transaction back, the request fails with a 503, and the client
    retries it with its Idempotency-Key, so a half-done write (or a commit cut off) is never replayed here.
    """
    if isinstance(dbapi_connection, AdaptedConnection) and dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


Outcome = Callable[["UnitOfWork"], Awaitable[None]]


class UnitOfWork:
    """One database transaction for one use case: everything it writes commits together or not at all.

    A use case whose failure is itself a fact to keep (a rejected check-in for fraud review, a revoked
    token family) registers that fact with `keep_on_failure`: on failure everything else it wrote is
    rolled back, then only the registered outcomes are written and committed.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._outcomes: list[Outcome] = []

    def keep_on_failure(self, outcome: Outcome) -> None:
        """Write `outcome` (in a transaction of its own) if the use case fails; nothing else of it stays."""
        self._outcomes.append(outcome)

    @property
    def keeps_outcome(self) -> bool:
        return bool(self._outcomes)

    def take_outcomes(self) -> list[Outcome]:
        """Hand the registered outcomes over to a caller that decides whether they are kept."""
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    async def add_unique(self, row: object, conflict: DomainError) -> None:
        """Insert `row` now; if a unique constraint refuses it (even in a race), raise `conflict`."""
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise conflict from error

    async def commit(self) -> None:
        self._outcomes.clear()
        await self.session.commit()

    async def fail(self) -> None:
        """Roll back everything; then write and commit only the outcomes registered to be kept."""
        await self.session.rollback()
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            for outcome in outcomes:
                await outcome(self)
            await self.session.commit()


_RETRYABLE_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "08000",  # connection_exception
        "08001",  # sqlclient_unable_to_establish_sqlconnection
        "08003",  # connection_does_not_exist
        "08006",  # connection_failure
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, in recovery)
    }
)


CHECK_VIOLATION = "23514"


def is_retryable(error: BaseException) -> bool:
    """The database could not be reached, the connection broke, no pooled connection came free in time,
    or the transaction lost a deadlock or serialization conflict.

    Such a request had no effect it could report (a commit cut off is undone or retried through the
    Idempotency-Key), so callers are told to retry (503) rather than that something is wrong (500).
    """
    if isinstance(error, PoolTimeout | OSError):  # OSError: connecting refused, reset or timed out
        return True
    if isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, InterfaceError)):
        return True
    driver_error = getattr(error, "orig", error)
    sqlstate = getattr(driver_error, "sqlstate", None)
    # A row routed to the DEFAULT partition just as its month's partition was attached: a retry lands.
    if sqlstate == CHECK_VIOLATION and "partition constraint" in str(driver_error):
        return True
    return sqlstate in _RETRYABLE_SQLSTATES


class Database:
    """The database, and optionally an engine for requests that only read (`create_engine(read_only=True)`).

    Reads there see what is committed when each statement starts, as statements inside a READ COMMITTED
    transaction do, so a use case that reads in one statement sees exactly what it would in a transaction.
    """

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._reading = async_sessionmaker(reader or engine, expire_on_commit=False, autoflush=False)

    def session(self) -> AsyncSession:
        """A new session; it takes a connection from the pool only when first used."""
        return self._sessions()

    def reading_session(self) -> AsyncSession:
        """A session for a request that only reads: on the reader when there is one (writes refused)."""
        return self._reading()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A use case run by a job or a command: commits when the block ends normally, else fails."""
        async with self._sessions() as session:
            uow = UnitOfWork(session)
            try:
                yield uow
            except Exception:
                await uow.fail()
                raise
            await uow.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not None:
            await self.reader.dispose()
