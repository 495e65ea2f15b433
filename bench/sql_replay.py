"""pgbench scripts that replay captured statements with varied parameters, and the 4-statement reference.

A replay transaction re-issues one request's statements in order (BEGIN, COMMIT and the pool's ping
included), as prepared statements like the app's driver, with its parameters varied so that concurrent
replays touch different rows the way concurrent requests do:

- a value that is an identity of the captured request (its member, store, terminal, sale, lot...; the
  first row of the path's *pool*) is taken from the pool row of this replay, one row per transaction;
- an id the request created (a UUIDv7 stamped after the capture began) is a fresh time-ordered id;
- a text containing either of them, or one of the request's unique *tokens* (receipt and idempotency
  keys, client event ids), has them replaced;
- everything else (amounts, times, JSON documents, offers, policy versions) is replayed as captured.

The varied values are computed by a `\\gset` query before each transaction (two or more when pgbench's
limit of 255 variables per statement requires): statements the request did not issue, reported as such.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.sql_capture import Statement

_PLACEHOLDER = re.compile(r"\$(\d+)(?!\d)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
NEW_ID_SKEW_MS = 1_000
ID_TIME_MOVE_MS = 10**9  # about 12 days


@dataclass(frozen=True)
class Pool:
    """Identities to vary per transaction; row 0 is the captured request's own."""

    table: str
    rows: list[dict[str, str]]


@dataclass(frozen=True)
class ReplayScript:
    text: str
    constants: dict[str, str]  # variables to --define: captured values replayed as they were
    statements: int  # the request's, without the setup query
    varied: int  # distinct parameter values varied per transaction
    kept_ids: tuple[str, ...]  # ids of existing rows not in the pool: replayed as captured
    setup_queries: int  # statements the replay adds per transaction to compute the varied values


async def write_pool(connection: asyncpg.Connection, pool: Pool) -> None:
    fields = list(pool.rows[0])
    columns = ", ".join(f'"{field}" text NOT NULL' for field in fields)
    await connection.execute(f'DROP TABLE IF EXISTS "{pool.table}"')
    await connection.execute(f'CREATE TABLE "{pool.table}" (n integer PRIMARY KEY, {columns})')
    await connection.copy_records_to_table(
        pool.table,
        columns=["n", *fields],
        records=[(n, *(row[field] for field in fields)) for n, row in enumerate(pool.rows)],
    )


def is_new_id(value: str, since_ms: int) -> bool:
    parsed = uuid.UUID(value)
    return parsed.version == 7 and parsed.int >> 80 >= since_ms - NEW_ID_SKEW_MS


class _Texts:
    """How a captured text enters the script: inline, or as a variable passed with `--define`.

    pgbench reads `:word` as a variable anywhere in a statement, inside a quoted literal too, so a text
    with a colon (times, JSON, scopes) can only be a variable. Variables also keep a statement's text,
    and so its plan, the app's; inline literals only serve to stay under pgbench's 255 per statement.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def variable(self, value: str) -> str:
        if value not in self.names:
            self.names[value] = f"sbs_c{len(self.names)}"
        return f":{self.names[value]}"

    def text(self, value: str) -> str:
        if ":" in value:
            return f"{self.variable(value)}::text"
        return "'" + value.replace("'", "''") + "'"


class _Variation:
    """Decides, per distinct captured value, the SQL expression that varies it (None: kept as captured).

    An id the request created keeps its random bits, and its 48-bit time is moved on by the replay's
    transaction number: unique per transaction, and still increasing, so inserts land at the right
    edge of the indexes as the app's do. The move starts far past the capture, so a moved prefix never
    equals another captured one (the replacements are applied one after another).
    """

    def __init__(self, pool: Pool | None, tokens: Sequence[str], new_ids: list[str], texts: _Texts) -> None:
        self.texts = texts
        self.tokens = tokens
        identities = pool.rows[0] if pool else {}
        self.exact = {value: f'p."{field}"' for field, value in identities.items()}
        # Substrings worth replacing inside a longer text: ids, keys, card numbers; not short numbers.
        self.inner = {value: column for value, column in self.exact.items() if len(value) >= 8}
        self.prefixes = {prefix: f"t.p{n}" for n, prefix in enumerate(sorted({i[:13] for i in new_ids}))}

    def moved_times(self) -> list[str]:
        """The new 48-bit times, as the id prefix 'xxxxxxxx-xxxx', one per captured millisecond."""
        moved = {
            column: int(prefix.replace("-", ""), 16) + ID_TIME_MOVE_MS
            for prefix, column in self.prefixes.items()
        }
        return [
            f"overlay(lpad(to_hex({ms} + :sbs_tx::bigint), 12, '0') placing '-' from 9 for 0) AS {column[2:]}"
            for column, ms in moved.items()
        ]

    def expression(self, value: str) -> str | None:
        if value in self.exact:
            return self.exact[value]
        if value.startswith("\\x"):  # bytea, hex-encoded: nothing readable to replace
            return None
        replacements = [(inner, column) for inner, column in self.inner.items() if inner in value]
        replacements += [(t, f"{self.texts.text(t + '-')} || t.tag") for t in self.tokens if t in value]
        replacements += [(prefix, column) for prefix, column in self.prefixes.items() if prefix in value]
        if not replacements:
            return None
        expression = self.texts.text(value)
        for inner, replacement in replacements:
            expression = f"replace({expression}, {self.texts.text(inner)}, {replacement})"
        return expression


MAX_ARGUMENTS = 255  # pgbench's limit of variables in one statement


def replay_script(
    statements: list[Statement], pool: Pool | None, tokens: Sequence[str], since_ms: int
) -> ReplayScript:
    values = [value for s in statements for value in s.parameters if value is not None]
    ids = dict.fromkeys(found for value in values for found in _UUID.findall(value))
    new_ids = [found for found in ids if is_new_id(found, since_ms)]
    texts = _Texts()
    variation = _Variation(pool, tokens, new_ids, texts)
    varied: dict[str, str] = {}
    setup: list[str] = []
    for value in dict.fromkeys(values):
        expression = variation.expression(value)
        if expression is not None:
            varied[value] = f"sbs_v{len(varied)}"
            setup.append(f"{expression} AS {varied[value]}")
    identities = set(pool.rows[0].values()) if pool else set()
    kept = tuple(found for found in ids if found not in identities and found not in new_ids)

    def bound(statement: Statement) -> str:
        crowded = len(_PLACEHOLDER.findall(statement.sql)) > MAX_ARGUMENTS

        def parameter(found: re.Match[str]) -> str:
            value = statement.parameters[int(found[1]) - 1]
            if value is None:
                return "NULL"
            if value in varied:
                return f":{varied[value]}"
            return texts.text(value) if crowded else texts.variable(value)

        return _PLACEHOLDER.sub(parameter, statement.sql.replace("\n", " ")).rstrip().rstrip(";") + ";"

    lines = [
        "\\set sbs_tx :sbs_base + :client_id + :sbs_clients * :sbs_i",
        "\\set sbs_i :sbs_i + 1",
        # Row 0, the captured request's own identities, only serves to recognise them: its rows may be
        # in a state no replay should start from (a small lot the capture emptied, say).
        "\\set sbs_row 1 + :sbs_tx % (:sbs_rows - 1)",
        *_setup_queries(setup, variation, pool),
        *(bound(statement) for statement in statements),
    ]
    return ReplayScript(
        "\n".join(lines) + "\n",
        {name: value for value, name in texts.names.items()},
        len(statements),
        len(varied),
        kept,
        len(lines) - 3 - len(statements),
    )


def _setup_queries(setup: list[str], variation: _Variation, pool: Pool | None) -> list[str]:
    """`\\gset` queries computing the varied values, as few as pgbench's argument limit allows."""
    if not setup:
        return []
    derived = ["(:sbs_run::text || '-' || :sbs_tx::text) AS tag", *variation.moved_times()]
    sources = f"(SELECT {', '.join(derived)}) AS t"
    if pool and any('p."' in expression for expression in setup):
        sources += f', "{pool.table}" AS p WHERE p.n = :sbs_row'
    room = MAX_ARGUMENTS - sources.count(":sbs_")
    queries: list[list[str]] = [[]]
    for expression in setup:
        if sum(e.count(":sbs_") for e in queries[-1]) + expression.count(":sbs_") > room:
            queries.append([])
        queries[-1].append(expression)
    return [f"SELECT {', '.join(query)} FROM {sources} \\gset" for query in queries]  # noqa: S608


REFERENCE_TABLES = (
    "CREATE TABLE bench_ref_accounts (id bigint PRIMARY KEY, points bigint NOT NULL, "
    "updated_at timestamptz NOT NULL)",
    "INSERT INTO bench_ref_accounts SELECT n, 0, now() FROM generate_series(1, 10000) n",
    "CREATE TABLE bench_ref_sales (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "account_id bigint NOT NULL REFERENCES bench_ref_accounts, total_minor bigint NOT NULL, "
    "sold_at timestamptz NOT NULL)",
    "CREATE TABLE bench_ref_entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "account_id bigint NOT NULL REFERENCES bench_ref_accounts, points bigint NOT NULL, "
    "recorded_at timestamptz NOT NULL)",
)
# The least a purchase that earns points can be: the account row, the sale, the ledger entry, atomically.
REFERENCE_SCRIPT = """\\set aid random(1, 10000)
\\set total random(300, 20000)
BEGIN;
UPDATE bench_ref_accounts SET points = points + :total / 100, updated_at = now() WHERE id = :aid;
INSERT INTO bench_ref_sales (account_id, total_minor, sold_at) VALUES (:aid, :total, now());
INSERT INTO bench_ref_entries (account_id, points, recorded_at) VALUES (:aid, :total / 100, now());
COMMIT;
"""


async def create_reference_tables(connection: asyncpg.Connection) -> None:
    for statement in REFERENCE_TABLES:
        await connection.execute(statement)


@dataclass(frozen=True)
class PgbenchResult:
    transactions: int
    most_by_one_client: int  # so a next run can start its transaction numbers past this one's
    per_second: float
    p50_ms: float
    p99_ms: float
    error: str | None  # the first error when a client aborted: the figures are then not comparable


def run_pgbench(
    url: str, script: str, clients: int, seconds: float, variables: dict[str, str] | None = None
) -> PgbenchResult:
    """`clients` connections replaying `script` for `seconds` (prepared statements, like asyncpg)."""
    with tempfile.TemporaryDirectory() as directory:
        script_path = Path(directory) / "script.sql"
        script_path.write_text(script)
        defines = [f"--define={name}={value}" for name, value in (variables or {}).items()]
        duration = ["--time", str(int(seconds))] if seconds >= 1 else ["--transactions", "1"]
        done = subprocess.run(
            [
                *("pgbench", "--no-vacuum", "--protocol=prepared", f"--client={clients}"),
                *(f"--jobs={min(2, clients)}", *duration, "--log", f"--log-prefix={directory}/tx"),
                *(*defines, f"--file={script_path}", url),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        # Per-transaction log lines: client id, its transaction number, latency in microseconds, ...
        logged = [
            fields
            for log in Path(directory).glob("tx.*")
            for fields in (line.split() for line in log.read_text().splitlines())
            if len(fields) >= 3 and fields[1].isdigit() and fields[2].isdigit()
        ]
    latencies_ms = sorted(int(fields[2]) / 1000 for fields in logged)
    processed = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "aborted" in line]
    if done.returncode != 0 and not errors:
        errors = done.stderr.splitlines()[-1:] or [f"pgbench exited {done.returncode}"]

    def percentile(p: float) -> float:
        if not latencies_ms:
            return float("nan")
        return latencies_ms[min(len(latencies_ms) - 1, int(p / 100 * len(latencies_ms)))]

    return PgbenchResult(
        transactions=int(processed[1]) if processed else 0,
        most_by_one_client=max((int(fields[1]) + 1 for fields in logged), default=0),
        per_second=float(tps[1]) if tps else 0.0,
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        error=errors[0] if errors else None,
    )
