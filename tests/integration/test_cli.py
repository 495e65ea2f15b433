"""Operator commands: staff and terminals created on the command line work through the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings, env_for_children
from tests.integration.factories import (
    PASSWORD,
    TerminalCredentials,
    bearer,
    create_store,
    pos_post,
    sign_up,
    unique_email,
)


def tsunagari(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_for_children(settings)}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
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

    unknown = tsunagari(settings, "terminal", "create", "--store", "NOPE", "--name", "R")
    assert unknown.returncode == 1
    assert "store_not_found" in unknown.stderr
    listed = await client.get(f"/v1/console/stores/{store['id']}/terminals", headers=bearer(login.json()))
    assert [t["name"] for t in listed.json()["items"]] == ["Register 9"]


def test_demo_refuses_a_configured_database_without_force(settings: Settings) -> None:
    refused = tsunagari(settings, "demo")
    assert refused.returncode == 2
    assert "--force" in refused.stderr


def test_bad_configuration_is_reported_by_variable_name(settings: Settings) -> None:
    env = {**os.environ, **env_for_children(settings), "TSUNAGARI_PORT": "http"}
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60
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


def test_points_expire_and_a_worker_run(settings: Settings) -> None:
    expired = tsunagari(settings, "points", "expire")
    assert expired.returncode == 0, expired.stderr
    assert "expired 0 points" in expired.stdout


async def test_worker_jobs_run_once_each_under_their_lock(db: Database, clock: SettableClock) -> None:
    from infra.worker import JOBS, run_job

    ran = [await run_job(db, clock, job) for job in JOBS]
    assert ran == [True] * len(JOBS)
