"""Results of the side-by-side benchmark: what was captured and replayed, and the comparing table."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench.harness import CpuUse, WrkResult
from bench.hot_paths import WEB_CEILING, HotPath
from bench.sql_capture import Statement
from bench.sql_replay import PgbenchResult, ReplayScript

CLIENTS = (16, 64)


@dataclass(frozen=True)
class Captured:
    statements: list[Statement]
    since_ms: int  # ids stamped from then on were made by the captured request


@dataclass(frozen=True)
class Replay:
    script: ReplayScript
    rows: int
    check_error: str | None

    def variables(self, clients: int, base: int, run: str) -> dict[str, str]:
        numbers = {"sbs_i": 0, "sbs_base": base, "sbs_clients": clients, "sbs_rows": self.rows}
        return {**self.script.constants, **{k: str(v) for k, v in numbers.items()}, "sbs_run": run}


# The table a statement reads or writes first, or the function a bare SELECT calls.
_TARGET = re.compile(
    r"^\s*(?:SELECT\s.*?\sFROM\s+(\w+)|SELECT\s+(\w+)\(|(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+))",
    re.I | re.S,
)
_WRITES = re.compile(r"\b(INSERT INTO|(?<!DO )UPDATE|DELETE FROM)\s+(\w+)", re.I)  # not ON CONFLICT DO UPDATE
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)\b(?!\s*\()", re.I)
_CTE_NAMES = re.compile(r"\b(\w+)\s+AS\s*\(", re.I)


def describe(sql: str) -> str:
    """A statement in a few words: its verb and table; for a WITH, what it writes and reads."""
    verb = sql.split(None, 1)[0].rstrip(";").upper() if sql.strip() else "?"
    if verb == "WITH":
        writes = [f"{kind.split()[0].upper()} {table}" for kind, table in _WRITES.findall(sql)]
        ctes = set(_CTE_NAMES.findall(sql))
        reads = sorted({table for table in _READS.findall(sql) if table not in ctes})
        return f"WITH({'; '.join([*writes, *(['reads ' + ' '.join(reads)] if reads else [])])})"
    target = _TARGET.match(sql)
    return " ".join([verb, *(name for name in target.groups() if name)]) if target else verb


def summary(statements: list[Statement]) -> str:
    """What the statements are, in order (BEGIN, SELECT members, INSERT purchases...)."""
    return ", ".join(describe(statement.sql) for statement in statements)


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}"


def _ms(value: float | None, decimals: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def _row(*cells: object) -> str:
    widths = (34, 7, 10, 8, 8, 6, 9, 10, 10, 8, 8, 6, 8, 8, 8)
    first, *rest = (str(cell) for cell in cells)
    return f"{first:<{widths[0]}} " + " ".join(
        f"{cell:>{width}}" for cell, width in zip(rest, widths[1:], strict=True)
    )


@dataclass(frozen=True)
class Served:
    """What one server achieved: the web ceiling and each path, by client count, and the CPU each used."""

    web: dict[int, WrkResult]
    app: dict[tuple[str, int], WrkResult]
    cpu: dict[tuple[str, int], CpuUse]  # by (path name, or WEB_CEILING, clients)

    def cpu_ms(self, name: str, clients: int, requests: int) -> tuple[str, str]:
        """(server, PostgreSQL) CPU milliseconds per request."""
        server, database, _ = self.cpu[(name, clients)].per_request_ms(requests)
        return _ms(server, 2), _ms(database, 2)


@dataclass(frozen=True)
class Figures:
    servers: dict[str, Served]
    reference: dict[int, PgbenchResult]
    replayed: dict[tuple[str, int], PgbenchResult]
    replay_cpu: dict[tuple[str, int], CpuUse]  # PostgreSQL's, by (path name or "reference", clients)

    def replay_db_ms(self, name: str, clients: int, transactions: int) -> str:
        use = self.replay_cpu.get((name, clients))
        return _ms(use.per_request_ms(transactions)[1], 2) if use else "-"

    def replay_tps(self, name: str, clients: int) -> float | None:
        result = self.replayed.get((name, clients))
        return result.per_second if result and not result.error else None


def report(
    paths: list[HotPath], captured: dict[str, Captured], replays: dict[str, Replay], figures: Figures
) -> None:
    for server, served in figures.servers.items():
        print(f"\nServed by {server}:")
        table(paths, captured, served, figures)
        goals({path.name for path in paths}, served, figures)
    print("\nStatements of one request, captured from PostgreSQL's log (a replay adds its setup query):")
    for path in paths:
        statements = captured[path.name].statements
        begins = sum(1 for s in statements if s.sql.strip().upper().startswith("BEGIN"))
        replay = replays.get(path.name)
        notes = ["no replay"]
        if replay:
            notes = [
                f"{replay.script.varied} values varied",
                f"{len(replay.script.kept_ids)} ids of existing rows replayed as captured",
            ]
            if replay.script.setup_queries > 1:
                notes.append(f"the replay adds {replay.script.setup_queries} setup queries")
            if replay.check_error:
                notes.append(f"replay check failed: {replay.check_error[:300]}")
        errors = {r.error for (name, _), r in figures.replayed.items() if name == path.name and r.error}
        notes += [f"replay failed: {error[:300]}" for error in sorted(errors)]
        print(f"- {path.label}: {len(statements)} statements, {begins} BEGIN; {'; '.join(notes)}")
        print(f"    {summary(statements)}")


def table(paths: list[HotPath], captured: dict[str, Captured], served: Served, figures: Figures) -> None:
    print(_row("path", "clients", "app req/s", "p50 ms", "p99 ms", "failed", "stmts/req", "replay tps",
               "replay p50", "x replay", "x 4-stmt", "x web", "app cpu", "app pg", "replay pg"))  # fmt: skip
    for clients in CLIENTS:
        web, ref = served.web[clients], figures.reference[clients]
        print(_row(f"{WEB_CEILING} (web ceiling)", clients, f"{web.per_second:,.0f}", _ms(web.p50_ms),
                   _ms(web.p99_ms), web.failed, 0, "", "", "", "", "1.00",
                   *served.cpu_ms(WEB_CEILING, clients, web.requests), ""))  # fmt: skip
        print(_row("4-statement reference (pgbench)", clients, "", "", "", "", 5, f"{ref.per_second:,.0f}",
                   _ms(ref.p50_ms), "", "1.00", "", "", "",
                   figures.replay_db_ms("reference", clients, ref.transactions)))  # fmt: skip
    for path in paths:
        for clients in CLIENTS:
            app = served.app[(path.name, clients)]
            replay_tps = figures.replay_tps(path.name, clients)
            replayed = figures.replayed.get((path.name, clients)) if replay_tps else None
            replay_p50 = replayed.p50_ms if replayed else None
            replay_pg = figures.replay_db_ms(path.name, clients, replayed.transactions) if replayed else "-"
            print(
                _row(
                    path.label,
                    clients,
                    f"{app.per_second:,.0f}",
                    _ms(app.p50_ms),
                    _ms(app.p99_ms),
                    app.failed,
                    len(captured[path.name].statements),
                    f"{replay_tps:,.0f}" if replay_tps else "-",
                    _ms(replay_p50),
                    _ratio(app.per_second, replay_tps),
                    _ratio(app.per_second, figures.reference[clients].per_second),
                    _ratio(app.per_second, served.web[clients].per_second),
                    *served.cpu_ms(path.name, clients, app.requests),
                    replay_pg,
                )
            )


def goals(names: set[str], served: Served, figures: Figures) -> None:
    print("Goals of issue 12:")
    for clients in CLIENTS:
        reference = figures.reference[clients].per_second
        checks = [
            ("POS purchase / its SQL replay", "purchase", figures.replay_tps("purchase", clients), 0.5),
            ("POS purchase / 4-statement reference", "purchase", reference, 0.15),
            ("redeeming purchase / its SQL replay", "redeem", figures.replay_tps("redeem", clients), 0.5),
            ("redeeming purchase / 4-statement ref.", "redeem", reference, 0.15),
            ("GET /v1/app/points / web ceiling", "points", served.web[clients].per_second, 0.35),
            ("check-in / its SQL replay", "check-in", figures.replay_tps("check-in", clients), 0.5),
        ]
        for label, name, ceiling, factor in checks:
            if name not in names:
                continue
            rate = served.app[(name, clients)].per_second
            if not ceiling:
                print(f"  {label}, {clients} clients: no ceiling measured")
                continue
            verdict = "met" if rate >= factor * ceiling else "NOT met"
            print(f"  {label}, {clients} clients: {rate / ceiling:.2f} (goal {factor}): {verdict}")
