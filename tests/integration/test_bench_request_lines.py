"""The benchmarks' request lines (bench/harness.py, sent by wrk/replay.lua or send_line) are what a register
of this release sends: a server that requires nonces accepts them, identical ones signed in the same second
included, and refuses one sent twice; so benchmark figures measure the work, not the replay guard."""

from __future__ import annotations

import json

import httpx
import msgspec

from bench.harness import request_line, send_line
from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.factories import TerminalCredentials
from tests.integration.problems import assert_problem

HEARTBEAT = "/v1/pos/heartbeat"


async def test_identical_lines_signed_in_one_second_pass_a_nonce_requiring_server_and_none_passes_twice(
    settings: Settings, clock: SettableClock, terminal: TerminalCredentials
) -> None:
    body = json.dumps({"software_version": "bench 1"})
    signer = (terminal.key_id, terminal.secret)
    at = clock.now()
    first, second = (request_line("POST", HEARTBEAT, terminal=signer, body=body, at=at) for _ in range(2))
    assert first != second  # the nonce alone tells them apart
    with serving(msgspec.structs.replace(settings, pos_require_nonce=True), clock) as url:
        async with httpx.AsyncClient(base_url=url) as register:
            assert (await send_line(register, first)).status_code == 200
            assert (await send_line(register, second)).status_code == 200
            assert_problem(await send_line(register, first), 401, "pos_request_replayed")
