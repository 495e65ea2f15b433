"""Operator commands: staff and terminals created on the command line work through the API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import msgspec
from sqlalchemy import func, select

from accounts.rules import StaffRole
from accounts.sessions import TokenOwner, issue_token_pair
from accounts.staff import create_staff
from accounts.tables import ConsoleSession
from commands.worker import JOBS, Job, WorkerContext, run_job
from domain.clock import SettableClock
from domain.tokens import Audience, new_refresh_token, refresh_token_digest
from infra.db import Database
from infra.settings import Settings, env_for_children
from offers.program import OfferProgram
from points.program import Program
from points.tables import PointLot
from push.policy import PushPolicy
from tests.conftest import serving
from tests.integration.factories import (
    PASSWORD,
    TerminalCredentials,
    bearer,
    create_store,
    pos_post,
    sign_up,
    store_draft,
    token_issuer,
    unique_email,
)
from tests.integration.register import pos, register, sale, shopper


def tsunagari(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_for_children(settings)}
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_staff_and_terminal_created_on_the_command_line(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email("admin")
    created = tsunagari(
        settings,
        "staff",
        "create",
        "--email",
        email,
        "--name",
        "Ops",
        "--role",
        "admin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    login = await client.post("/v1/console/sessions", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["staff"]["role"] == "admin"

    duplicate = tsunagari(
        settings, "staff", "create", "--email", email, "--name", "Ops", stdin=PASSWORD + "\n"
    )
    assert duplicate.returncode == 1
    assert "staff_exists" in duplicate.stderr

    store = await create_store(client, login.json(), code="OSA-NAMBA")
    made = tsunagari(settings, "terminal", "create", "--store", "OSA-NAMBA", "--name", "Register 9")
    assert made.returncode == 0, made.stderr
    key_id = re.search(r"key id: (\S+)", made.stdout)
    secret = re.search(r"secret: (\S+)", made.stdout)
    assert key_id is not None
    assert secret is not None
    terminal = TerminalCredentials("", store["id"], key_id.group(1), secret.group(1))
    beat = await pos_post(client, terminal, "/v1/pos/heartbeat", {"software_version": "cli"})
    assert beat.status_code == 200, beat.text
    assert beat.json()["store_code"] == "OSA-NAMBA"

    terminal_id = re.search(r"terminal (\S+)", made.stdout)
    assert terminal_id is not None
    reissued = tsunagari(settings, "terminal", "reissue", "--terminal", terminal_id.group(1))
    assert reissued.returncode == 0, reissued.stderr
    new_secret = re.search(r"secret: (\S+)", reissued.stdout)
    assert new_secret is not None
    assert new_secret.group(1) != secret.group(1)
    old_beat = await pos_post(client, terminal, "/v1/pos/heartbeat", {"software_version": "cli"})
    assert old_beat.status_code == 401, old_beat.text
    renewed = TerminalCredentials("", store["id"], key_id.group(1), new_secret.group(1))
    new_beat = await pos_post(client, renewed, "/v1/pos/heartbeat", {"software_version": "cli"})
    assert new_beat.status_code == 200, new_beat.text
    nobody = tsunagari(settings, "terminal", "reissue", "--terminal", str(uuid.uuid4()))
    assert nobody.returncode == 1
    assert "terminal_not_found" in nobody.stderr

    unknown = tsunagari(settings, "terminal", "create", "--store", "NOPE", "--name", "R")
    assert unknown.returncode == 1
    assert "store_not_found" in unknown.stderr
    listed = await client.get(f"/v1/console/stores/{store['id']}/terminals", headers=bearer(login.json()))
    assert [t["name"] for t in listed.json()["items"]] == ["Register 9"]


async def test_staff_demoted_disabled_and_enabled_on_the_command_line(
    client: httpx.AsyncClient, settings: Settings, db: Database, clock: SettableClock
) -> None:
    email = unique_email("admin")
    async with db.unit_of_work() as uow:
        await create_staff(uow, clock, unique_email("admin"), PASSWORD, "Another", StaffRole.ADMIN)
        staff = await create_staff(uow, clock, email, PASSWORD, "Ops", StaffRole.ADMIN)
        uow.session.add(
            ConsoleSession(
                staff_id=staff.id,
                token_digest=refresh_token_digest(new_refresh_token()),
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(hours=1),
            )
        )
    login = (await client.post("/v1/console/sessions", json={"email": email, "password": PASSWORD})).json()

    demoted = tsunagari(settings, "staff", "role", "--email", email.upper(), "--role", "marketer")
    assert demoted.returncode == 0, demoted.stderr
    # The access token issued to an admin says "admin" still; the account is what counts.
    as_admin = await client.post("/v1/console/stores", json=store_draft(), headers=bearer(login))
    assert as_admin.status_code == 403, as_admin.text
    assert as_admin.json()["code"] == "staff_role_required"
    assert (await client.get("/v1/console/stores", headers=bearer(login))).status_code == 200

    disabled = tsunagari(settings, "staff", "disable", "--email", email)
    assert disabled.returncode == 0, disabled.stderr
    refused = await client.get("/v1/console/stores", headers=bearer(login))
    assert refused.status_code == 401
    assert refused.json()["code"] == "staff_disabled"
    async with db.unit_of_work() as uow:
        open_sessions = await uow.session.scalar(
            select(func.count())
            .select_from(ConsoleSession)
            .where(ConsoleSession.staff_id == staff.id, ConsoleSession.ended_at.is_(None))
        )
    assert open_sessions == 0
    # A refresh that was under way when the disable committed: its token is refused while disabled...
    async with db.unit_of_work() as uow:
        owner = TokenOwner(Audience.STAFF, staff.id)
        racing = await issue_token_pair(uow, token_issuer(settings, clock), owner, role="marketer")
    refused_while_disabled = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": racing.refresh_token}
    )
    assert refused_while_disabled.json()["code"] == "staff_disabled"

    enabled = tsunagari(settings, "staff", "enable", "--email", email)
    assert enabled.returncode == 0, enabled.stderr
    # ...and does not come back with the account, which starts afresh.
    for issued_before in (login["tokens"]["refresh_token"], racing.refresh_token):
        old_refresh = await client.post("/v1/console/sessions/refresh", json={"refresh_token": issued_before})
        assert old_refresh.status_code == 401
        assert old_refresh.json()["code"] == "refresh_token_revoked"
    again = await client.post("/v1/console/sessions", json={"email": email, "password": PASSWORD})
    assert again.status_code == 200, again.text
    assert again.json()["staff"]["role"] == "marketer"
    # Enabling an enabled account changes nothing: nobody is logged out by mistake.
    assert tsunagari(settings, "staff", "enable", "--email", email).returncode == 0
    kept = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": again.json()["tokens"]["refresh_token"]}
    )
    assert kept.status_code == 200, kept.text

    nobody = tsunagari(settings, "staff", "disable", "--email", unique_email("nobody"))
    assert nobody.returncode == 1
    assert "staff_not_found" in nobody.stderr


def test_demo_refuses_a_configured_database_without_force(settings: Settings) -> None:
    refused = tsunagari(settings, "demo")
    assert refused.returncode == 2
    assert "--force" in refused.stderr


def test_bad_configuration_is_reported_by_variable_name(settings: Settings) -> None:
    env = {**os.environ, **env_for_children(settings), "TSUNAGARI_PORT": "http"}
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "TSUNAGARI_PORT" in result.stderr


async def test_timeline_commands(client: httpx.AsyncClient, settings: Settings) -> None:
    member = await sign_up(client)
    rebuilt = tsunagari(settings, "traits", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt traits of 1 members" in rebuilt.stdout
    exported = tsunagari(settings, "timeline", "export", "--out", "-")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(line["kind"], line["member_id"]) for line in lines] == [
        ("member_joined", member["member"]["id"])
    ]
    assert "exported 1 events" in exported.stderr
    partitions = tsunagari(settings, "timeline", "partitions")
    assert partitions.returncode == 0, partitions.stderr


async def test_points_expire_expires_lots_dated_by_the_default_program(
    client: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    """A sale made under the default program (lots last 365 days, to the end of that month in Tokyo),
    posted to an app whose clock stands two years back; then `points expire`, on the real clock."""
    sold = datetime(2024, 10, 12, 20, 0, tzinfo=UTC)  # 13 October, 05:00 in Tokyo
    back_then = SettableClock(sold + timedelta(days=3))
    default_program = msgspec.structs.replace(settings, points_program=None)
    admin_email = unique_email("admin")
    async with db.unit_of_work() as uow:
        await create_staff(uow, back_then, admin_email, PASSWORD, "Ops", StaffRole.ADMIN)
    with serving(default_program, back_then) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as then:
            admin = (
                await then.post("/v1/console/sessions", json={"email": admin_email, "password": PASSWORD})
            ).json()
            terminal = await register(then, admin)
            member = await shopper(then)
            body = sale(1_000, at=sold, code=member.code(back_then.now()))
            assert (await pos(then, back_then, terminal, "/v1/pos/purchases", body)).status_code == 201
    async with db.unit_of_work() as uow:
        (expires_at,) = (await uow.session.execute(select(PointLot.expires_at))).scalars().all()
    # 365 days after 13 October 2024 in Tokyo is 13 October 2025: the lot lasts to the end of that month.
    assert expires_at == datetime(2025, 11, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    expired = tsunagari(settings, "points", "expire")
    assert expired.returncode == 0, expired.stderr
    assert "expired 10 points" in expired.stdout
    async with db.unit_of_work() as uow:
        assert (await uow.session.execute(select(PointLot.remaining))).scalars().all() == [0]
    again = tsunagari(settings, "points", "expire")
    assert "expired 0 points" in again.stdout


def _context(db: Database, clock: SettableClock) -> WorkerContext:
    return WorkerContext(db, clock, Program(), PushPolicy(), OfferProgram())


async def test_two_workers_at_once_run_a_job_once(db: Database, clock: SettableClock) -> None:
    runs: list[int] = []

    async def slow(context: WorkerContext) -> object:
        runs.append(1)
        await asyncio.sleep(0.5)  # long enough for the other worker to try meanwhile
        return None

    job = Job("test.slow", timedelta(minutes=1), slow)
    context = _context(db, clock)
    first, second = await asyncio.gather(run_job(context, job), run_job(context, job))
    assert sorted([first, second]) == [False, True]
    assert runs == [1]
    assert await run_job(context, job) is True  # the lock was released


async def test_every_worker_job_runs(db: Database, clock: SettableClock) -> None:
    ran = [await run_job(_context(db, clock), job) for job in JOBS]
    assert ran == [True] * len(JOBS)
