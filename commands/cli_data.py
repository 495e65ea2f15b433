"""Commands on the data the service keeps: timeline export and archive, traits, partitions, points, jobs."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

from commands.cli_runtime import in_loop, ready_database, run_reporting_errors
from commands.progress import ProgressBar
from domain.clock import SystemClock
from infra.db import Database
from infra.settings import Settings


def add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    points = commands.add_parser("points", help="the points ledger").add_subparsers(
        required=True, metavar="ACTION"
    )
    points.add_parser("expire", help="expire lots past their date (idempotent)").set_defaults(
        run=_points_expire
    )
    audit = points.add_parser(
        "audit",
        help="check every invariant of the ledger; exit status 1 when any is broken, 2 when it could not run",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per violation, then the summary")
    audit.add_argument(
        "--events-since",
        type=datetime.fromisoformat,
        help="facts from then on must have their timeline events (ISO 8601, with zone; default: the oldest "
        "month the timeline holds, within TSUNAGARI_TIMELINE_RETENTION_DAYS)",
    )
    audit.set_defaults(run=_points_audit)
    commands.add_parser(
        "worker", help="run the periodic jobs until stopped (any number of workers)"
    ).set_defaults(run=_worker)
    traits = commands.add_parser("traits", help="member traits").add_subparsers(
        required=True, metavar="ACTION"
    )
    traits.add_parser("rebuild", help="recompute every member's traits from the timeline").set_defaults(
        run=_traits_rebuild
    )
    timeline = commands.add_parser("timeline", help="the interaction timeline").add_subparsers(
        required=True, metavar="ACTION"
    )
    export = timeline.add_parser("export", help="stream events as NDJSON (oldest first)")
    export.add_argument("--out", required=True, help="file to write, or - for stdout")
    export.add_argument(
        "--since", type=datetime.fromisoformat, help="occurred at or after (ISO 8601, with zone)"
    )
    export.add_argument("--until", type=datetime.fromisoformat, help="occurred before (ISO 8601, with zone)")
    export.set_defaults(run=_timeline_export)
    archive = timeline.add_parser("archive", help="export then drop events older than the retention horizon")
    archive.add_argument("--out-dir", help="where the .ndjson.gz files go (default <data dir>/archive)")
    archive.add_argument("--retention-days", type=int, help="default TSUNAGARI_TIMELINE_RETENTION_DAYS")
    archive.set_defaults(run=_timeline_archive)
    timeline.add_parser("partitions", help="create the coming months' partitions").set_defaults(
        run=_timeline_partitions
    )


def _traits_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.rebuild import rebuild_traits

    async def rebuild(db: Database) -> str:
        bar = ProgressBar("members")
        count = await rebuild_traits(db, SystemClock(), bar)
        bar.finish()
        return f"rebuilt traits of {count} members"

    return run_reporting_errors(settings, rebuild)


def _timeline_export(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.export import export_events

    async def export(db: Database) -> str:
        bar = ProgressBar("events")
        if args.out == "-":
            count = await export_events(db, sys.stdout.buffer, args.since, args.until, bar)
        else:
            with open(args.out, "wb") as out:  # noqa: ASYNC230 - a CLI job; nothing else waits on this loop
                count = await export_events(db, out, args.since, args.until, bar)
        bar.finish()
        return f"exported {count} events"

    return run_reporting_errors(settings, export, output=sys.stderr)


def _timeline_archive(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.export import archive_before, purge_receipts
    from timeline.partitions import month_start
    from timeline.rules import MAX_EVENT_AGE

    retention = timedelta(days=args.retention_days or settings.timeline_retention_days)
    out_dir = Path(args.out_dir) if args.out_dir else settings.data_path / "archive"

    async def archive(db: Database) -> str:
        now = SystemClock().now()
        bar = ProgressBar("archived events")
        files = await archive_before(db, month_start((now - retention).date()), out_dir, bar)
        purged = await purge_receipts(db, now - MAX_EVENT_AGE - timedelta(days=1))
        return f"archived {len(files)} files to {out_dir}; purged {purged} old client event receipts"

    return run_reporting_errors(settings, archive)


def _timeline_partitions(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.partitions import ensure_partitions

    async def ensure(db: Database) -> str:
        async with db.engine.begin() as connection:
            created = await ensure_partitions(connection, SystemClock().now())
        return f"created partitions: {', '.join(created) or 'none needed'}"

    return run_reporting_errors(settings, ensure)


def _points_expire(args: argparse.Namespace, settings: Settings) -> int:
    from points.expiry import expire_due

    async def expire(db: Database) -> str:
        return f"expired {await expire_due(db, SystemClock().now())} points"

    return run_reporting_errors(settings, expire)


def _points_audit(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from points.audit import AuditSummary, audit_ledger
    from points.program import load_program

    summary = AuditSummary()
    if args.events_since is not None and args.events_since.tzinfo is None:
        print("tsunagari: --events-since needs a time zone (e.g. 2026-01-01T00:00:00+09:00)", file=sys.stderr)
        return 2

    async def audit(db: Database) -> None:
        since = args.events_since or await _timeline_holds_since(db, settings.timeline_retention_days)
        stages = load_program(settings.points_program).stages
        async for violation in audit_ledger(db, since, stages, summary):
            if args.json:
                print(msgspec.json.encode(violation).decode(), flush=True)
            else:
                print(f"{violation.member_id or 'anonymous sale'}: {violation.invariant}: {violation.detail}")

    try:
        with ready_database(settings) as ready:
            in_loop(ready, audit)
    except Exception as error:  # a cron job must tell "could not run" from "found violations"
        print(f"tsunagari: the audit could not run: {error}", file=sys.stderr)
        if args.json:
            print(msgspec.json.encode({"error": str(error), **msgspec.to_builtins(summary)}).decode())
        return 2
    if args.json:
        print(msgspec.json.encode(summary).decode())
    else:
        print(
            f"audited {summary.members} members and {summary.anonymous_sales} anonymous sales: "
            f"{summary.violations} violations",
            file=sys.stderr,
        )
    return 1 if summary.violations else 0


async def _timeline_holds_since(db: Database, retention_days: int) -> datetime:
    """The oldest time the timeline still holds: its retention, or later where months were archived."""
    from timeline.partitions import month_bounds, partition_months

    since = SystemClock().now() - timedelta(days=retention_days)
    async with db.engine.connect() as connection:
        months = await partition_months(connection)
    return max(since, month_bounds(min(months))[0]) if months else since


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from commands.worker import run_worker

    async def work(ready: Settings) -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, stop.set)
        await run_worker(ready, SystemClock(), stop)
        return "worker stopped"

    with ready_database(settings) as ready:
        print(asyncio.run(work(ready)), flush=True)
    return 0
