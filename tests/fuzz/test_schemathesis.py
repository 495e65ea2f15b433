"""Schemathesis against the published OpenAPI, with every check it has (issue 13.1): no server error, no
undocumented status, content type or header, no answer outside its schema, every schema-valid request
accepted (or refused by a documented rule: 404, 409, 422, 429) and every invalid one refused, auth
enforced, and stateful sequences built from the responses.

`object_level_authorization` runs with the two members as peers, but has little to probe: Schemathesis
replays a peer's successful GETs of ids the owner was given, and no app GET takes an id (a member's
objects are reached through the token alone). Ids in paths, queries and bodies are tried against other
members', stores' and terminals' objects in test_owasp_broken_object_level_authorization.py. So that the
fuzzer reaches past "no such object", the ids of the demo's stores, offers, members, campaigns and
terminals are offered to it for every parameter of that name.

Each surface runs as a register, an app or a console user would call it: POS requests signed as
docs/pos-integration.md says (tests/fuzz/pos_signing.py), the app as two members and the console as a
marketer then an admin, all signing in through the API. The server is the app on its own database with
the demo retailer and its history. The seed is fixed, so a run is repeatable; a longer run is this module
with more examples or another seed: `TSUNAGARI_FUZZ_EXAMPLES=200 TSUNAGARI_FUZZ_SEED=7 pytest tests/fuzz`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from accounts.tables import Member
from api.app import create_app
from commands.demo import (
    ADMIN_EMAIL,
    DEMO_PASSWORD,
    MARKETER_EMAIL,
    DemoTerminal,
    demo_member_email,
    seed_demo,
)
from commands.migrate import upgrade
from domain.clock import SystemClock
from infra.db import Database, UnitOfWork, create_engine
from infra.settings import Settings
from offers.tables import Offer
from push.tables import Campaign
from stores.tables import Store, Terminal
from tests.conftest import DatabaseFactory, serving_asgi

EXAMPLES = int(os.environ.get("TSUNAGARI_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("TSUNAGARI_FUZZ_SEED", "20261124"))
REPOSITORY = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("st")
# What a schema-valid request may meet: the rules beyond the schema are documented answers of their own.
ACCEPTED = ["2XX", "401", "403", "404", "409", "422", "429"]


class FuzzTarget(msgspec.Struct, frozen=True):
    url: str
    terminal: DemoTerminal
    ids: dict[str, list[str]]  # parameter name -> ids of real objects


async def _real_ids(uow: UnitOfWork) -> dict[str, list[str]]:
    async def ids(column: Any) -> list[str]:
        return [str(value) for value in (await uow.session.execute(select(column).limit(20))).scalars()]

    stores = await ids(Store.id)
    return {
        "store_id": stores,
        "offer_id": await ids(Offer.id),
        "member_id": await ids(Member.id),
        "campaign_id": await ids(Campaign.id),
        "terminal_id": await ids(Terminal.id),
    }


@pytest.fixture(scope="module")
def target(settings: Settings, new_database: DatabaseFactory) -> Iterator[FuzzTarget]:
    database_url = new_database.create("fuzz")
    upgrade(database_url)
    fuzzed = msgspec.structs.replace(
        settings,
        database_url=database_url,
        points_program=None,
        redis_key_prefix=f"{settings.redis_key_prefix}fuzz:",
    )

    async def seed() -> tuple[DemoTerminal, dict[str, list[str]]]:
        db = Database(create_engine(database_url, pool_size=2))
        try:
            credentials = await seed_demo(db, SystemClock(), fuzzed.key_ring("terminal_key").current)
            async with db.unit_of_work() as uow:
                return credentials.terminals[0], await _real_ids(uow)
        finally:
            await db.dispose()

    terminal, ids = asyncio.run(seed())
    with serving_asgi(create_app(fuzzed, SystemClock()), "tsunagari-fuzz") as url:
        yield FuzzTarget(url, terminal, ids)


def _sign_in(name: str, path: str, email: str) -> dict[str, object]:
    token = {
        "extractFrom": "body",
        "extractSelector": "/tokens/access_token",
        "sendIn": "header",
        "sendName": "Authorization",
        "sendTemplate": "Bearer {token}",
    }
    credentials = {
        "username": email,
        "password": DEMO_PASSWORD,
        "usernameField": "email",
        "passwordField": "password",
    }
    login = {"verb": "POST", "endpoint": path, "contentType": "application/json"}
    return {"name": name, "loginEndpointAuth": {**login, "payloadUserPwd": credentials, "token": token}}


# Surface -> the users it is called as (Web Fuzzing Commons auth), the peers that must not see each
# other's objects, and the hooks module.
SURFACES = {
    "pos": ([], [], "tests.fuzz.pos_signing"),
    "app": (
        [
            _sign_in("member-a", "/v1/app/sessions", demo_member_email(1)),
            _sign_in("member-b", "/v1/app/sessions", demo_member_email(2)),
        ],
        ["member-a", "member-b"],
        "tests.fuzz.generation",
    ),
    # One retailer's staff share its objects by design: no peers; marketer first, so admin-only routes
    # are found refusing the marketer before the admin is used.
    "console": (
        [
            _sign_in("marketer", "/v1/console/sessions", MARKETER_EMAIL),
            _sign_in("admin", "/v1/console/sessions", ADMIN_EMAIL),
        ],
        [],
        "tests.fuzz.generation",
    ),
}


def _config(directory: Path, users: list[dict[str, object]], peers: list[str], target: FuzzTarget) -> Path:
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        "allow-x00 = false  # a NUL is refused in any text (api/strict_body.py, docs/api-conventions.md)",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(ACCEPTED)}",
    ]
    for name, values in target.ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines.append("[parameters]")
    for name in target.ids:
        for place in ("path", "query", "body"):
            lines.append(f'"{place}.{name}" = {{ dictionary = "{name}", probability = 0.7 }}')
    if users:
        (directory / "auth.json").write_text(json.dumps({"auth": users}))
        lines += ["[auth.wfc]", 'path = "auth.json"']
        if peers:
            lines.append(f"peers = {json.dumps(peers)}")
    config = directory / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.parametrize("surface", list(SURFACES))
def test_schemathesis_finds_nothing_on_the_surface(surface: str, target: FuzzTarget, tmp_path: Path) -> None:
    users, peers, hooks = SURFACES[surface]
    config = _config(tmp_path, users, peers, target)
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "SCHEMATHESIS_HOOKS": hooks,
        "TSUNAGARI_FUZZ_KEY_ID": target.terminal.key_id,
        "TSUNAGARI_FUZZ_SECRET": target.terminal.secret,
    }
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{target.url}/schema/openapi.json",
        "--include-path-regex",
        f"^/v1/{surface}/",
        "--checks",
        "all",
        "--no-color",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    report = run.stdout + run.stderr
    print(report[-6000:])  # the summary, in the CI log
    assert run.returncode == 0, report[-20000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", report)
    assert cases is not None, report[-3000:]
    assert int(cases.group(1)) >= 100
    assert cases.group(1) == cases.group(2)
