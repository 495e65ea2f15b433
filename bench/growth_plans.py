"""The plans of each measured request's statements, as the app's own connection runs them.

auto_explain, enabled for the bench database only (ALTER DATABASE ... SET, reset afterwards), logs every
statement's plan with EXPLAIN (ANALYZE, BUFFERS) detail to the server log: the real statements with
their real parameters, prepared the way the app prepares them, and after five executions on the one
pooled connection the plan PostgreSQL keeps for them (generic or custom). Nothing is replayed, so no
unique key or lock differs from the request's.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import takewhile
from pathlib import Path

import asyncpg
import httpx
import msgspec

from bench.growth_data import Size
from bench.growth_measure import server_settings
from bench.harness import database_url, running_server, send_line_checked
from bench.hot_path_data import World
from bench.hot_paths import HotPath
from bench.side_by_side import Lines
from bench.side_by_side_report import describe
from bench.sql_capture import StatementLog, server_log_path, statement_logging

AUTO_EXPLAIN = {
    "session_preload_libraries": "'auto_explain'",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "track_io_timing": "on",  # how long reads of pages not in shared_buffers took
}
WARM_REQUESTS = 6  # PostgreSQL decides between a custom and a generic plan after five executions

_PLAN_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] \S*@(?P<db>\S+) LOG:  duration: (?P<ms>[\d.]+) ms  plan:$"
)
_PLAN_NODE = re.compile(r"\(cost=[\d.]+\.\.[\d.]+ rows=\d+ width=\d+\)")  # a plan node's first line
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")
_BUFFERS = re.compile(r"^\s*Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?")
_READ_TIME = re.compile(r"^\s*I/O Timings: (?:shared/local )?read=([\d.]+)")
_SUBPLAN = re.compile(r"^\s*(?:->|CTE |InitPlan |SubPlan )")  # where the top node's own lines end


@dataclass(frozen=True)
class Plan:
    statement: str  # in a few words (bench.side_by_side_report.describe)
    duration_ms: float
    buffers: int  # shared buffers hit + read by the top plan node (its children included)
    read_buffers: int  # of which read from outside shared_buffers (OS cache or disk)
    read_ms: float  # the time those reads took
    seq_scans: list[str]
    rows_removed: int  # the most rows one node read and filtered out
    text: str


async def request_plans(
    world: World, size: Size, paths: list[HotPath], lines: Lines, session: str
) -> dict[str, list[Plan]]:
    """Per path: the plans of the statements of its last of WARM_REQUESTS + 1 sequential requests."""
    admin = await asyncpg.connect(database_url("postgres"))
    plans = {}
    try:
        log = StatementLog(await server_log_path(admin), size.database)
        async with statement_logging(admin, size.database, AUTO_EXPLAIN):
            # One connection for the writes and one for the reads (the reader engine's routes), so the
            # last request runs on connections that ran the same statements WARM_REQUESTS times.
            settings = msgspec.structs.replace(
                server_settings(world, size, 1), database_pool_size=1, database_read_pool_size=1
            )
            with running_server(settings) as base:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    for path in paths:
                        requests = lines(path, 1, f"explain-{session}-{size}")[: WARM_REQUESTS + 1]
                        for line in requests[:-1]:
                            await send_line_checked(client, line, path.label)
                        send = functools.partial(send_line_checked, client, requests[-1], path.label)
                        plans[path.name] = await log.capture(send, parse_plans)
    finally:
        await admin.close()
    return plans


def parse_plans(text: str, database: str) -> list[Plan]:
    """auto_explain's records about `database` in a stretch of server log, in order."""
    plans: list[Plan] = []
    record: list[str] | None = None
    duration_ms = 0.0
    for line in text.splitlines():
        if line.startswith("\t") and record is not None:
            record.append(line[1:])
            continue
        if record is not None:
            plans.append(_plan(record, duration_ms))
            record = None
        matched = _PLAN_RECORD.match(line)
        if matched and matched["db"] == database:
            record, duration_ms = [], float(matched["ms"])
    if record is not None:
        plans.append(_plan(record, duration_ms))
    return plans


def _plan(record: list[str], duration_ms: float) -> Plan:
    """One auto_explain record: "Query Text: ...", the query's lines, then the plan, top node first."""
    starts = next((n for n, line in enumerate(record) if _PLAN_NODE.search(line)), len(record))
    query = "\n".join(record[:starts]).removeprefix("Query Text: ")
    plan = record[starts:]
    # The top node's own lines (its children's, the plan's sections and the triggers' come after).
    own = list(takewhile(lambda line: line.startswith(" ") and not _SUBPLAN.match(line), plan[1:]))
    buffers = next((found for line in own if (found := _BUFFERS.match(line))), None)
    hit, read = (int(buffers[1] or 0), int(buffers[2] or 0)) if buffers else (0, 0)
    read_time = next((found for line in own if (found := _READ_TIME.match(line))), None)
    plan_text = "\n".join(plan)
    return Plan(
        describe(query),
        duration_ms,
        hit + read,
        read,
        float(read_time[1]) if read_time else 0.0,
        _SEQ_SCAN.findall(plan_text),
        max((int(n) for n in _REMOVED.findall(plan_text)), default=0),
        "\n".join(record),
    )


def write_plans(directory: Path, size: Size, plans: dict[str, list[Plan]]) -> None:
    """Each path's plans at `size`, in full, to a file of its own in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for path, found in plans.items():
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        texts = [
            f"-- {n}. {plan.statement} ({plan.duration_ms} ms)\n{plan.text}"
            for n, plan in enumerate(found, 1)
        ]
        (directory / f"{size}.{path}.plans.txt").write_text(f"-- {stamp}\n" + "\n\n".join(texts) + "\n")
