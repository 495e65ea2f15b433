"""One database transaction per request, settled when the response starts.

The transaction commits if and only if the response status is below 400; a failed request changes
nothing, except the outcomes its use case registered to keep (`UnitOfWork.keep_on_failure`). The commit
happens before the first byte of the response is sent, so a client never sees a success that was not
committed: if the commit itself fails, the client gets a 503 (retry) or 500 problem instead.

It is a middleware rather than a dependency with a cleanup step because litestar does not close a
generator dependency when a later dependency (authentication, say) fails: the transaction would be
left to the garbage collector.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_messages
from infra.db import Database, UnitOfWork, is_retryable

log = logging.getLogger(__name__)

_TRANSACTION = "tsunagari.transaction"
RETRY_AFTER_S = 2


READS_ONLY = "reads_only"
# A route's `opt` for a handler that only reads: its unit of work runs on the database's reader, with no
# transaction around its statements (BEGIN and COMMIT would be two of a one-statement read's three round
# trips). The server refuses a write there, so a handler marked by mistake fails loudly, never half-writes.
ONLY_READS = {READS_ONLY: True}


class RequestTransaction:
    """The request's unit of work, made on first use so requests that need no database open nothing."""

    def __init__(self, db: Database, reads_only: bool) -> None:
        self._db = db
        self._reads_only = reads_only
        self._uow: UnitOfWork | None = None

    def unit_of_work(self) -> UnitOfWork:
        if self._uow is None:
            session = self._db.reading_session() if self._reads_only else self._db.session()
            self._uow = UnitOfWork(session)
        return self._uow

    async def settle(self, succeeded: bool) -> BaseException | None:
        """Commit or fail the transaction; the error when a commit did not happen."""
        if self._uow is None:
            return None
        if not succeeded:
            try:
                await self._uow.fail()
            except Exception:
                # The client still gets its 4xx; only a kept outcome (e.g. a rejection record) is lost.
                log.warning("could not record the outcome of a failed request", exc_info=True)
            return None
        try:
            await self._uow.commit()
        except Exception as error:
            return error
        return None

    async def close(self) -> None:
        if self._uow is not None:
            await self._uow.session.close()  # rolls back whatever was not settled


def request_unit_of_work(request: Request[Any, Any, Any]) -> UnitOfWork:
    transaction: RequestTransaction = request.scope["state"][_TRANSACTION]
    return transaction.unit_of_work()


def transaction_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        db: Database = scope["litestar_app"].state.services.db
        handler = scope.get("route_handler")
        transaction = RequestTransaction(db, bool(handler and handler.opt.get(READS_ONLY)))
        scope.setdefault("state", {})[_TRANSACTION] = transaction
        replaced = False

        async def send_once_settled(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own response gave way to a problem about the commit
            if message["type"] == "http.response.start":
                error = await transaction.settle(message["status"] < 400)
                if error is not None:
                    replaced = True
                    for problem_message in _commit_failed(scope, error):
                        await send(problem_message)
                    return
            await send(message)

        try:
            await app(scope, receive, send_once_settled)
        finally:
            await transaction.close()

    return middleware


def _commit_failed(scope: Scope, error: BaseException) -> list[Message]:
    path = str(scope.get("path", ""))
    if is_retryable(error):
        log.warning("commit failed, database unavailable: %s", error)
        return problem_messages(
            503,
            "service_unavailable",
            "A dependency is unavailable; retry shortly",
            "the database became unavailable while committing; retry (with the same Idempotency-Key for "
            "writes, so nothing is applied twice)",
            path,
            {"retry_after_s": RETRY_AFTER_S},
        )
    log.error("commit failed", exc_info=error)
    return problem_messages(
        500,
        "internal_error",
        "Something went wrong on our side; the request had no effect",
        "the change could not be committed",
        path,
    )
