"""The `tsunagari` command: serve, migrate, seed demo data, and operator tasks."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from types import FrameType

from accounts.rules import StaffRole
from commands import migrate
from commands.cli_data import add_data_commands
from commands.cli_offers import add_offer_commands
from commands.cli_runtime import in_loop, ready_database, run_reporting_errors
from commands.demo import DemoCredentials, seed_demo
from commands.embedded_push import embedded_push
from domain.clock import SystemClock
from infra.db import Database
from infra.embedded import embedded_services
from infra.logging import configure_logging
from infra.settings import Settings, SettingsError, env_for_children, load_settings


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
    for action, enabled, summary in (
        ("disable", False, "refuse the account at once: its tokens, refresh tokens and console sessions end"),
        ("enable", True, "let a disabled account log in again; what it was issued before stays ended"),
    ):
        staff_switch = staff.add_parser(action, help=summary)
        staff_switch.add_argument("--email", required=True)
        staff_switch.set_defaults(run=_staff_set_enabled, enabled=enabled)
    staff_role = staff.add_parser("role", help="change an account's role; it applies from its next request")
    staff_role.add_argument("--email", required=True)
    staff_role.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    staff_role.set_defaults(run=_staff_set_role)

    terminal = commands.add_parser("terminal", help="POS terminals").add_subparsers(
        required=True, metavar="ACTION"
    )
    terminal_create = terminal.add_parser(
        "create", help="create a POS terminal for a store; prints its secret once"
    )
    terminal_create.add_argument("--store", required=True, help="store code, e.g. TKY-GINZA")
    terminal_create.add_argument("--name", required=True)
    terminal_create.set_defaults(run=_terminal_create)
    terminal_reissue = terminal.add_parser(
        "reissue",
        help="a new secret for a terminal under the current terminal key; its old secret stops at once",
    )
    terminal_reissue.add_argument("--terminal", required=True, type=uuid.UUID, help="the terminal's id")
    terminal_reissue.set_defaults(run=_terminal_reissue)
    fcm_local = commands.add_parser(
        "fcm-local", help="run a local FCM-compatible server (tests, demo, benchmarks; no credentials)"
    )
    fcm_local.add_argument("--host", default="127.0.0.1")
    fcm_local.add_argument("--port", type=int, default=8010)
    fcm_local.set_defaults(run=_fcm_local)
    add_data_commands(commands)
    add_offer_commands(commands)
    return parser


def _fcm_local(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from push.fcm_local import create_local_fcm

    print(f"Local FCM server on http://{args.host}:{args.port} (received: /_local/messages)", flush=True)
    uvicorn.run(create_local_fcm(), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    overrides = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = load_settings(data_dir=settings.data_dir, **overrides)
    started = time.perf_counter()
    embedded = settings.database_url is None
    with ready_database(settings) as ready:
        if embedded and ready.seed_demo_data:
            _print_demo_credentials(in_loop(ready, _seed(ready)), shown_terminals=3)
        # The embedded demo sends its campaigns itself; a deployment runs `tsunagari worker`.
        with embedded_push(ready) if embedded else nullcontext(ready) as ready:
            _serve_http(ready, started)
    return 0


def _serve_http(ready: Settings, started: float) -> None:
    import uvicorn

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
        server_header=False,  # what runs the service is nobody else's business
        timeout_graceful_shutdown=10,
        # Longer than load balancers' idle timeout (often 60 s), so the balancer closes idle
        # connections first and never sends a request into one the server is closing.
        timeout_keep_alive=75,
    )


def _exit_cleanly_on_stop_signals() -> None:
    """Turn SIGTERM/SIGINT into SystemExit(0) once uvicorn has shut down.

    uvicorn re-raises the stop signal after its graceful shutdown; with the default handlers that
    would kill the process before the embedded PostgreSQL and Redis are stopped.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stop)


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
    with ready_database(settings) as ready:
        _print_demo_credentials(in_loop(ready, _seed(ready)), shown_terminals=None)
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

    return run_reporting_errors(settings, create)


def _staff_set_enabled(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.staff_access import set_staff_enabled

    async def switch(db: Database) -> str:
        async with db.unit_of_work() as uow:
            staff = await set_staff_enabled(uow, SystemClock(), args.email, args.enabled)
        state = "enabled" if args.enabled else "disabled; its sessions ended"
        return f"{staff.role} {staff.email} ({staff.id}) {state}"

    return run_reporting_errors(settings, switch)


def _staff_set_role(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.staff_access import set_staff_role

    async def change(db: Database) -> str:
        async with db.unit_of_work() as uow:
            staff = await set_staff_role(uow, args.email, StaffRole(args.role))
        return f"{staff.email} ({staff.id}) is now {staff.role}"

    return run_reporting_errors(settings, change)


def _terminal_create(args: argparse.Namespace, settings: Settings) -> int:
    from stores.schemas import TerminalDraft
    from stores.service import create_terminal, store_id_by_code

    async def create(db: Database) -> str:
        async with db.unit_of_work() as uow:
            store_id = await store_id_by_code(uow, args.store)
            draft = TerminalDraft(name=args.name)
            created = await create_terminal(
                uow, SystemClock(), settings.key_ring("terminal_key").current, store_id, draft
            )
        return (
            f"terminal {created.terminal.id}\nkey id: {created.key_id}\nsecret: {created.secret} (shown once)"
        )

    return run_reporting_errors(settings, create)


def _terminal_reissue(args: argparse.Namespace, settings: Settings) -> int:
    from stores.service import reissue_terminal_secret

    async def reissue(db: Database) -> str:
        async with db.unit_of_work() as uow:
            issued = await reissue_terminal_secret(
                uow, settings.key_ring("terminal_key").current, args.terminal
            )
        return f"terminal {issued.terminal.id}\nkey id: {issued.key_id}\nsecret: {issued.secret} (shown once)"

    return run_reporting_errors(settings, reissue)


def _seed(settings: Settings) -> Callable[[Database], Awaitable[DemoCredentials]]:
    return lambda db: seed_demo(db, SystemClock(), settings.key_ring("terminal_key").current)


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
