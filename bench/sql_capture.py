"""The SQL statements one HTTP request issues, read from PostgreSQL's own statement log.

For the capture, the bench database (and only it) gets `log_statement = 'all'` with parameters logged
in full; the server then writes every statement of that database's new sessions, with its bound
parameters, to its log. The bench sends one request at a time and reads what was appended meanwhile.
Nothing of the shared server's configuration changes: the settings are per database and reset after.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg

QUIET_S = 0.5  # the log is taken as complete once it stopped growing for this long
SETTLE_LIMIT_S = 10.0
EVERY_STATEMENT = {"log_statement": "'all'", "log_parameter_max_length": "-1"}

Parsed = TypeVar("Parsed")


@dataclass
class Statement:
    """One statement as the server executed it, with its bound parameters ($1, $2, ...; None is NULL)."""

    pid: int
    sql: str
    parameters: tuple[str | None, ...] = ()


_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(?P<pid>\d+)\] (?P<user>[^@\s]*)@(?P<db>\S*) "
    r"(?P<level>[A-Z]+):  (?P<message>.*)$"
)
_PARAMETER = re.compile(r"\$(\d+) = (?:NULL|'((?:[^']|'')*)')(?:, |$)", re.DOTALL)


async def server_log_path(admin: asyncpg.Connection) -> Path:
    """Where the server writes its log: the collector's current file, or else the postmaster's stderr."""
    prefix = await admin.fetchval("SHOW log_line_prefix")
    if "%p" not in prefix or "%d" not in prefix:
        raise SystemExit(f"the statement capture needs %p and %d in log_line_prefix (it is {prefix!r})")
    data_directory = Path(await admin.fetchval("SHOW data_directory"))
    current = await admin.fetchval("SELECT pg_current_logfile()")
    if current:
        return data_directory / str(current)
    # Without the logging collector (Debian's default) the server logs to its stderr, which
    # pg_ctlcluster points at a file; /proc names it (readable to root or the postgres user).
    postmaster = int((data_directory / "postmaster.pid").read_text().split()[0])
    return Path(f"/proc/{postmaster}/fd/2")


@asynccontextmanager
async def statement_logging(
    admin: asyncpg.Connection, database: str, settings: Mapping[str, str] = EVERY_STATEMENT
) -> AsyncIterator[None]:
    """Logging `settings` (SQL literals) for the sessions of `database` opened from now on, reset
    afterwards; by default every statement, parameters in full."""
    for name, value in settings.items():
        await admin.execute(f'ALTER DATABASE "{database}" SET {name} = {value}')
    try:
        yield
    finally:
        for name in settings:
            await admin.execute(f'ALTER DATABASE "{database}" RESET {name}')


class StatementLog:
    """The part of the server log written about one database while a request ran."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database

    async def settled(self) -> int:
        """The log's size once it has stopped growing (post-commit work of the last request included)."""
        size, quiet_since = os.stat(self.path).st_size, asyncio.get_running_loop().time()
        deadline = quiet_since + SETTLE_LIMIT_S
        while (now := asyncio.get_running_loop().time()) < deadline:
            await asyncio.sleep(0.1)
            grown = os.stat(self.path).st_size
            if grown != size:
                size, quiet_since = grown, now
            elif now - quiet_since >= QUIET_S:
                break
        return size

    async def capture(
        self, send: Callable[[], Awaitable[None]], parse: Callable[[str, str], Parsed]
    ) -> Parsed:
        """What `parse` finds about this database (parse_statements: its statements) in the log
        written while `send` ran and until the log settled."""
        start = await self.settled()
        await send()
        end = await self.settled()
        text = await asyncio.to_thread(self._read, start, end)
        return parse(text, self.database)

    def _read(self, start: int, end: int) -> str:
        with open(self.path, "rb") as log:
            log.seek(start)
            return log.read(end - start).decode(errors="replace")


def parse_statements(text: str, database: str) -> list[Statement]:
    """Statements of `database` in a stretch of server log (log_statement = 'all')."""
    statements: list[Statement] = []
    record: dict[str, str] | None = None

    def finish(record: dict[str, str]) -> None:
        if record["db"] != database:
            return
        message, pid = record["message"], int(record["pid"])
        if record["level"] == "LOG" and message.startswith("statement: "):
            statements.append(Statement(pid, message.removeprefix("statement: ")))
        elif record["level"] == "LOG" and message.startswith("execute "):
            statements.append(Statement(pid, message.split(": ", 1)[1]))
        elif record["level"] == "DETAIL" and message.startswith("parameters: "):
            last = next((s for s in reversed(statements) if s.pid == pid), None)
            if last is not None:
                last.parameters = parse_parameters(message.removeprefix("parameters: "))

    for line in text.splitlines():
        matched = _RECORD.match(line)
        if matched:
            if record is not None:
                finish(record)
            record = matched.groupdict()
        elif record is not None and line.startswith("\t"):
            record["message"] += "\n" + line[1:]
    if record is not None:
        finish(record)
    return statements


def parse_parameters(text: str) -> tuple[str | None, ...]:
    values: dict[int, str | None] = {}
    for found in _PARAMETER.finditer(text):
        values[int(found[1])] = None if found[2] is None else found[2].replace("''", "'")
    return tuple(values.get(n) for n in range(1, max(values, default=0) + 1))
