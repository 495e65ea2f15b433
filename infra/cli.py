"""The `tsunagari` command: serve, migrate, seed demo data, and operator tasks."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TextIO, TypeVar

from accounts.rules import StaffRole
from domain.clock import SystemClock
from domain.errors import DomainError
from infra import migrate
from infra.db import Database, create_engine
from infra.demo import DemoCredentials, seed_demo
from infra.embedded import embedded_services
from infra.logging import configure_logging
from infra.progress import ProgressBar
from infra.settings import Settings, SettingsError, env_for_children, load_settings

T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir)
    except SettingsError as error:
        print(f"tsunagari: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    command: Callable[[argparse.Namespace, Settings], int] = args.run
    return command(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsunagari", description=__doc__)
    parser.add_argument(
        "--data-dir", help="embedded data and secrets (default ./.tsunagari; TSUNAGARI_DATA_DIR)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the HTTP API (embedded PostgreSQL/Redis unless URLs are set)"
    )
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1; TSUNAGARI_WORKERS)")
    serve.set_defaults(run=_serve)

    migrate_cmd = commands.add_parser("migrate", help="apply database migrations")
    migrate_cmd.add_argument("direction", nargs="?", choices=("upgrade", "downgrade"), default="upgrade")
    migrate_cmd.add_argument("--revision", help="target revision (default: head; -1 for downgrade)")
    migrate_cmd.set_defaults(run=_migrate)

    demo = commands.add_parser("demo", help="seed a demo retailer (idempotent)")
    demo.add_argument(
        "--force",
        action="store_true",
        help="also seed a configured (non-embedded) database: adds known passwords",
    )
    demo.set_defaults(run=_demo)

    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    staff_create = staff.add_parser(
        "create", help="create a marketer or admin (password read from stdin/prompt)"
    )
    staff_create.add_argument("--email", required=True)
    staff_create.add_argument("--name", required=True, help="display name")
    staff_create.add_argument(
        "--role", choices=[role.value for role in StaffRole], default=StaffRole.MARKETER.value
    )
    staff_create.set_defaults(run=_staff_create)

    terminal = commands.add_parser("terminal", help="POS terminals").add_subparsers(
        required=True, metavar="ACTION"
    )
    terminal_create = terminal.add_parser(
        "create", help="create a POS terminal for a store; prints its secret once"
    )
    terminal_create.add_argument("--store", required=True, help="store code, e.g. TKY-GINZA")
    terminal_create.add_argument("--name", required=True)
    terminal_create.set_defaults(run=_terminal_create)
    _add_timeline_commands(commands)
    return parser


def _add_timeline_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    overrides = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = load_settings(data_dir=settings.data_dir, **overrides)
    started = time.perf_counter()
    with _ready_database(settings) as ready:
        if settings.database_url is None and ready.seed_demo_data:
            _print_demo_credentials(_in_loop(ready, _seed(ready)), shown_terminals=3)
        # Worker processes build the app from the environment, so they see these exact settings.
        os.environ.update(env_for_children(ready))
        print(
            f"Tsunagari ready to serve on http://{ready.host}:{ready.port} "
            f"(prepared in {time.perf_counter() - started:.1f}s; API docs at /schema/swagger)",
            flush=True,
        )
        _exit_cleanly_on_stop_signals()
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=ready.host,
            port=ready.port,
            workers=ready.workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    return 0


def _exit_cleanly_on_stop_signals() -> None:
    """Turn SIGTERM/SIGINT into SystemExit(0) once uvicorn has shut down.

    uvicorn re-raises the stop signal after its graceful shutdown; with the default handlers that
    would kill the process before the embedded PostgreSQL and Redis are stopped.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stop)


@contextmanager
def _ready_database(settings: Settings) -> Iterator[Settings]:
    """Start embedded servers where nothing is configured, and bring an embedded database up to date.

    A configured database is migrated only by an explicit `tsunagari migrate`, as operators expect.
    """
    with embedded_services(settings) as ready:
        assert ready.database_url is not None
        if settings.database_url is None:
            migrate.upgrade(ready.database_url)
        yield ready


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    with embedded_services(settings) as ready:
        assert ready.database_url is not None
        if args.direction == "upgrade":
            migrate.upgrade(ready.database_url, args.revision or "head")
        else:
            migrate.downgrade(ready.database_url, args.revision or "-1")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is not None and not args.force:
        print(
            "tsunagari: refusing to seed demo accounts (with published passwords) into "
            "TSUNAGARI_DATABASE_URL; pass --force if this database is a throwaway",
            file=sys.stderr,
        )
        return 2
    with _ready_database(settings) as ready:
        _print_demo_credentials(_in_loop(ready, _seed(ready)), shown_terminals=None)
    return 0


def _staff_create(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.staff import create_staff

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")

    async def create(db: Database) -> str:
        async with db.unit_of_work() as uow:
            staff = await create_staff(
                uow, SystemClock(), args.email, password, args.name, StaffRole(args.role)
            )
        return f"created {staff.role} {staff.email} ({staff.id})"

    return _run_reporting_errors(settings, create)


def _terminal_create(args: argparse.Namespace, settings: Settings) -> int:
    from stores.schemas import TerminalDraft
    from stores.service import create_terminal, store_id_by_code

    async def create(db: Database) -> str:
        async with db.unit_of_work() as uow:
            store_id = await store_id_by_code(uow, args.store)
            draft = TerminalDraft(name=args.name)
            created = await create_terminal(
                uow, SystemClock(), settings.secret("terminal_key"), store_id, draft
            )
        return (
            f"terminal {created.terminal.id}\nkey id: {created.key_id}\nsecret: {created.secret} (shown once)"
        )

    return _run_reporting_errors(settings, create)


def _traits_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.rebuild import rebuild_traits

    async def rebuild(db: Database) -> str:
        bar = ProgressBar("members")
        count = await rebuild_traits(db, SystemClock(), bar)
        bar.finish()
        return f"rebuilt traits of {count} members"

    return _run_reporting_errors(settings, rebuild)


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

    return _run_reporting_errors(settings, export, output=sys.stderr)


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

    return _run_reporting_errors(settings, archive)


def _timeline_partitions(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.partitions import ensure_partitions

    async def ensure(db: Database) -> str:
        async with db.engine.begin() as connection:
            created = await ensure_partitions(connection, SystemClock().now())
        return f"created partitions: {', '.join(created) or 'none needed'}"

    return _run_reporting_errors(settings, ensure)


def _run_reporting_errors(
    settings: Settings, action: Callable[[Database], Awaitable[str]], output: TextIO = sys.stdout
) -> int:
    with _ready_database(settings) as ready:
        try:
            print(_in_loop(ready, action), file=output)
        except DomainError as error:
            print(f"tsunagari: {error.code}: {error.detail}", file=sys.stderr)
            return 1
    return 0


def _in_loop(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run one async action with a database pool that lives exactly as long as the action."""
    database_url = settings.database_url
    assert database_url is not None

    async def run() -> T:
        db = Database(create_engine(database_url, pool_size=2))
        try:
            return await action(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _seed(settings: Settings) -> Callable[[Database], Awaitable[DemoCredentials]]:
    return lambda db: seed_demo(db, SystemClock(), settings.secret("terminal_key"))


def _print_demo_credentials(credentials: DemoCredentials, shown_terminals: int | None) -> None:
    print(
        "Demo retailer ready.\n"
        f"  console admin:    {credentials.admin_email} / {credentials.staff_password}\n"
        f"  console marketer: {credentials.marketer_email} / {credentials.staff_password}\n"
        f"  app member:       {credentials.member_email} / {credentials.member_password}"
    )
    for terminal in credentials.terminals[:shown_terminals]:
        print(f"  POS terminal {terminal.store_code}: key id {terminal.key_id}, secret {terminal.secret}")
    if credentials.terminals:
        print("  (terminal secrets are shown once; create more with `tsunagari terminal create`)")


if __name__ == "__main__":
    raise SystemExit(main())
