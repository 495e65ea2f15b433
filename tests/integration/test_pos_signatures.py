"""Signed POS requests: valid, wrong secret, stale, replayed, tampered, disabled, and store scoping."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.factories import (
    TerminalCredentials,
    bearer,
    create_store,
    create_terminal,
    pos_post,
    signed_headers,
)
from tests.integration.problems import assert_problem
from tests.integration.register import register

HEARTBEAT = "/v1/pos/heartbeat"
EXAMPLE_CLIENT = Path(__file__).parents[2] / "docs" / "examples" / "pos_client.py"


async def last_seen(client: httpx.AsyncClient, admin: dict[str, Any], terminal: TerminalCredentials) -> Any:
    page = await client.get(f"/v1/console/stores/{terminal.store_id}/terminals", headers=bearer(admin))
    return page.json()["items"][0]["last_seen_at"]


async def test_valid_signature_is_accepted_and_acts_for_the_terminal_store(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    response = await pos_post(client, terminal, HEARTBEAT, {"software_version": "regi 4.2"})
    assert response.status_code == 200, response.text
    assert response.json()["store_id"] == terminal.store_id
    assert response.json()["store_code"] == "TKY-GINZA"
    assert await last_seen(client, admin, terminal) is not None
    identity = await client.get(
        "/v1/pos/terminal", headers=signed_headers(terminal, "GET", "/v1/pos/terminal")
    )
    assert identity.json()["terminal_id"] == terminal.terminal_id


async def test_each_terminal_sees_only_its_own_store(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    other_store = await create_store(client, admin, code="OSA-UMEDA")
    other = await create_terminal(client, admin, other_store["id"])
    mine = await client.get("/v1/pos/terminal", headers=signed_headers(terminal, "GET", "/v1/pos/terminal"))
    theirs = await client.get("/v1/pos/terminal", headers=signed_headers(other, "GET", "/v1/pos/terminal"))
    assert mine.json()["store_code"] == "TKY-GINZA"
    assert theirs.json()["store_code"] == "OSA-UMEDA"
    # A terminal signing with its own key id but another terminal's secret gets nowhere.
    crossed = signed_headers(terminal, "GET", "/v1/pos/terminal", secret=other.secret)
    assert_problem(await client.get("/v1/pos/terminal", headers=crossed), 401, "pos_signature_invalid")


async def test_unsigned_and_unknown_terminals_are_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    assert_problem(await client.post(HEARTBEAT, json={"software_version": "x"}), 401, "pos_signature_missing")
    unknown = TerminalCredentials(terminal.terminal_id, terminal.store_id, "tk_unknown", terminal.secret)
    body = b'{"software_version": "x"}'
    response = await client.post(
        HEARTBEAT, content=body, headers=signed_headers(unknown, "POST", HEARTBEAT, body)
    )
    assert_problem(response, 401, "pos_terminal_unknown")


async def test_wrong_secret_is_refused_with_no_state_change(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    body = b'{"software_version": "x"}'
    headers = signed_headers(terminal, "POST", HEARTBEAT, body, secret="ts_not-the-secret")
    assert_problem(await client.post(HEARTBEAT, content=body, headers=headers), 401, "pos_signature_invalid")
    assert await last_seen(client, admin, terminal) is None


async def test_stale_and_future_timestamps_are_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    body = b'{"software_version": "x"}'
    # A minute past the 300 s window either side: a request signed one second past it could reach a busy
    # server a second or more later, back inside the window.
    for offset in (-360, +360, -86_400):
        headers = signed_headers(terminal, "POST", HEARTBEAT, body, timestamp=int(time.time()) + offset)
        response = await client.post(HEARTBEAT, content=body, headers=headers)
        assert_problem(response, 401, "pos_timestamp_out_of_window")
        assert "server_time" in response.json()
    within = signed_headers(terminal, "POST", HEARTBEAT, body, timestamp=int(time.time()) - 200)
    assert (await client.post(HEARTBEAT, content=body, headers=within)).status_code == 200


async def test_replayed_request_is_refused(client: httpx.AsyncClient, terminal: TerminalCredentials) -> None:
    body = b'{"software_version": "x"}'
    headers = signed_headers(terminal, "POST", HEARTBEAT, body)
    assert (await client.post(HEARTBEAT, content=body, headers=headers)).status_code == 200
    assert_problem(await client.post(HEARTBEAT, content=body, headers=headers), 401, "pos_request_replayed")


async def test_identical_requests_signed_in_the_same_second_with_their_own_nonces_are_all_accepted(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    """Two scans of one member in one second: the same method, path, body and second, both answered."""
    body = b'{"software_version": "x"}'
    now = int(time.time())
    sent = [signed_headers(terminal, "POST", HEARTBEAT, body, timestamp=now) for _ in range(2)]
    assert sent[0]["Tsunagari-Nonce"] != sent[1]["Tsunagari-Nonce"]
    answers = await asyncio.gather(*(client.post(HEARTBEAT, content=body, headers=h) for h in sent))
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]


async def test_a_nonce_is_accepted_once_even_signed_again_under_another_timestamp(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    body = b'{"software_version": "x"}'
    nonce = "retry-of-one-nonce-0001"
    first = signed_headers(terminal, "POST", HEARTBEAT, body, nonce=nonce, timestamp=int(time.time()))
    again = signed_headers(terminal, "POST", HEARTBEAT, body, nonce=nonce, timestamp=int(time.time()) - 1)
    assert first["Tsunagari-Signature"] != again["Tsunagari-Signature"]
    assert (await client.post(HEARTBEAT, content=body, headers=first)).status_code == 200
    assert_problem(await client.post(HEARTBEAT, content=body, headers=again), 401, "pos_request_replayed")


async def test_a_nonce_that_was_not_signed_or_is_malformed_is_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    body = b'{"software_version": "x"}'
    swapped = signed_headers(terminal, "POST", HEARTBEAT, body) | {"Tsunagari-Nonce": "another-nonce-0000001"}
    assert_problem(await client.post(HEARTBEAT, content=body, headers=swapped), 401, "pos_signature_invalid")
    for bad in ("short", "x" * 65, "has space in it 01", "dots.are.not.allowed.0001"):
        malformed = signed_headers(terminal, "POST", HEARTBEAT, body, nonce=bad)
        assert_problem(
            await client.post(HEARTBEAT, content=body, headers=malformed), 401, "pos_nonce_invalid"
        )
    assert await last_seen(client, admin, terminal) is None


async def test_a_register_of_the_previous_release_signs_without_a_nonce_until_the_operator_requires_one(
    client: httpx.AsyncClient, terminal: TerminalCredentials, settings: Settings, clock: SettableClock
) -> None:
    body = b'{"software_version": "regi 4.1"}'
    old = signed_headers(terminal, "POST", HEARTBEAT, body, legacy=True)
    assert "Tsunagari-Nonce" not in old
    assert (await client.post(HEARTBEAT, content=body, headers=old)).status_code == 200
    assert_problem(await client.post(HEARTBEAT, content=body, headers=old), 401, "pos_request_replayed")
    with serving(msgspec.structs.replace(settings, pos_require_nonce=True), clock) as strict_url:
        async with httpx.AsyncClient(base_url=strict_url) as strict:
            older = signed_headers(terminal, "POST", HEARTBEAT, body, legacy=True)
            assert_problem(
                await strict.post(HEARTBEAT, content=body, headers=older), 401, "pos_nonce_required"
            )
            current = signed_headers(terminal, "POST", HEARTBEAT, body)
            assert (await strict.post(HEARTBEAT, content=body, headers=current)).status_code == 200


async def test_tampered_body_path_or_method_is_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    signed_body = json.dumps({"software_version": "regi 4.2"}).encode()
    headers = signed_headers(terminal, "POST", HEARTBEAT, signed_body)
    tampered = json.dumps({"software_version": "evil 6.6"}).encode()
    assert_problem(
        await client.post(HEARTBEAT, content=tampered, headers=headers), 401, "pos_signature_invalid"
    )
    get_signed_as_post = signed_headers(terminal, "POST", "/v1/pos/terminal")
    assert_problem(
        await client.get("/v1/pos/terminal", headers=get_signed_as_post), 401, "pos_signature_invalid"
    )
    query_added = signed_headers(terminal, "GET", "/v1/pos/terminal")
    assert_problem(
        await client.get("/v1/pos/terminal?store=other", headers=query_added), 401, "pos_signature_invalid"
    )
    assert await last_seen(client, admin, terminal) is None


async def test_disabled_terminal_and_archived_store_are_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    # Accepted first, so the server knows (caches) the terminal as enabled before it is disabled.
    assert (await pos_post(client, terminal, HEARTBEAT, {"software_version": "y"})).status_code == 200
    disabled = await client.patch(
        f"/v1/console/terminals/{terminal.terminal_id}", json={"enabled": False}, headers=bearer(admin)
    )
    assert disabled.json()["enabled"] is False
    assert_problem(
        await pos_post(client, terminal, HEARTBEAT, {"software_version": "x"}), 403, "pos_terminal_disabled"
    )
    await client.patch(
        f"/v1/console/terminals/{terminal.terminal_id}", json={"enabled": True}, headers=bearer(admin)
    )
    assert (await pos_post(client, terminal, HEARTBEAT, {"software_version": "x"})).status_code == 200
    await client.delete(f"/v1/console/stores/{terminal.store_id}", headers=bearer(admin))
    assert_problem(
        await pos_post(client, terminal, HEARTBEAT, {"software_version": "x"}), 403, "pos_terminal_disabled"
    )


async def test_signed_but_invalid_body_is_a_validation_problem(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    response = await pos_post(client, terminal, HEARTBEAT, {"software_version": ""})
    assert_problem(response, 400, "validation_failed")


async def test_oversized_body_is_refused(client: httpx.AsyncClient, terminal: TerminalCredentials) -> None:
    response = await pos_post(client, terminal, HEARTBEAT, {"software_version": "x" * (2 * 1024 * 1024)})
    assert_problem(response, 413, "request_too_large")


def example_client(base_url: str, terminal: TerminalCredentials) -> Any:
    """The runnable client from docs/examples, loaded as it is shipped."""
    spec = importlib.util.spec_from_file_location("pos_client", EXAMPLE_CLIENT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PosClient(base_url, terminal.key_id, terminal.secret)


async def test_documented_example_client_talks_to_the_server(
    base_url: str, terminal: TerminalCredentials
) -> None:
    client = example_client(base_url, terminal)
    status, body = await asyncio.to_thread(client.request, "POST", HEARTBEAT, {"software_version": "doc 1"})
    assert status == 200, body
    assert body["store_code"] == "TKY-GINZA"
    status, body = await asyncio.to_thread(client.request, "GET", "/v1/pos/terminal")
    assert (status, body["terminal_id"]) == (200, terminal.terminal_id)


async def test_documented_example_client_posts_a_sale_exactly_once(
    base_url: str, terminal: TerminalCredentials
) -> None:
    client = example_client(base_url, terminal)
    sale = {
        "receipt_id": "EX-1",
        "sold_at": datetime.now(UTC).isoformat(),
        "currency": "JPY",
        "total_minor": 500,
        "lines": [{"line_no": 1, "sku": "X", "category": "food", "quantity": 1, "unit_price_minor": 500}],
    }
    first = await asyncio.to_thread(
        client.request, "POST", "/v1/pos/purchases", sale, idempotency_key="ex-sale-0001"
    )
    await asyncio.sleep(1.1)  # a retry in a later second: signed anew, same key
    again = await asyncio.to_thread(
        client.request, "POST", "/v1/pos/purchases", sale, idempotency_key="ex-sale-0001"
    )
    assert first[0] == again[0] == 201, (first, again)
    assert first[1] == again[1]


async def test_documented_example_client_posts_a_json_file_from_the_command_line(
    base_url: str, terminal: TerminalCredentials, tmp_path: Path
) -> None:
    sale = {
        "receipt_id": "EX-CLI-1",
        "sold_at": datetime.now(UTC).isoformat(),
        "currency": "JPY",
        "total_minor": 300,
        "lines": [{"line_no": 1, "sku": "X", "category": "food", "quantity": 1, "unit_price_minor": 300}],
    }
    body = tmp_path / "sale.json"
    body.write_text(json.dumps(sale))
    command = [
        sys.executable,
        str(EXAMPLE_CLIENT),
        "--base-url",
        base_url,
        "--key-id",
        terminal.key_id,
        "--secret",
        terminal.secret,
        "post",
        "/v1/pos/purchases",
        str(body),
        "--idempotency-key",
        "ex-cli-sale-0001",
    ]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, _, answer = done.stdout.partition(" ")
    assert status == "201", done.stdout
    assert json.loads(answer)["receipt_id"] == "EX-CLI-1"


NONCE_BODY = b'{"software_version": "x"}'


async def test_a_timestamp_of_latin1_digits_is_refused_not_a_server_error(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    """'²' (a Latin-1 byte a header may carry) is a digit to str.isdigit() but not to int()."""
    headers: dict[str, Any] = signed_headers(terminal, "POST", HEARTBEAT, NONCE_BODY)
    headers["Tsunagari-Timestamp"] = (str(int(time.time()))[:-1] + "\u00b2").encode("latin-1")
    answer = await client.post(HEARTBEAT, content=NONCE_BODY, headers=headers)
    assert answer.status_code == 401, (answer.status_code, answer.text[:300])


async def test_a_captured_legacy_request_cannot_be_replayed_by_adding_a_nonce(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    captured = signed_headers(terminal, "POST", HEARTBEAT, NONCE_BODY, legacy=True)
    assert (await client.post(HEARTBEAT, content=NONCE_BODY, headers=captured)).status_code == 200
    for nonce in ("fresh-nonce-0000000001", captured["Tsunagari-Timestamp"] + "000000"):
        replay = captured | {"Tsunagari-Nonce": nonce}
        assert_problem(
            await client.post(HEARTBEAT, content=NONCE_BODY, headers=replay), 401, "pos_signature_invalid"
        )


async def test_a_nonce_request_cannot_be_downgraded_to_the_legacy_form(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    captured = signed_headers(terminal, "POST", HEARTBEAT, NONCE_BODY)
    assert (await client.post(HEARTBEAT, content=NONCE_BODY, headers=captured)).status_code == 200
    stripped = {k: v for k, v in captured.items() if k != "Tsunagari-Nonce"}
    assert_problem(
        await client.post(HEARTBEAT, content=NONCE_BODY, headers=stripped), 401, "pos_signature_invalid"
    )
    empty = captured | {"Tsunagari-Nonce": ""}
    assert_problem(await client.post(HEARTBEAT, content=NONCE_BODY, headers=empty), 401, "pos_nonce_invalid")


async def test_one_terminals_nonce_does_not_block_another_terminal(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any]
) -> None:
    other = await register(client, admin)
    nonce = "shared-nonce-value-0001"
    for till in (terminal, other):
        headers = signed_headers(till, "POST", HEARTBEAT, NONCE_BODY, nonce=nonce)
        answer = await client.post(HEARTBEAT, content=NONCE_BODY, headers=headers)
        assert answer.status_code == 200, answer.text
