"""Broken object level authorisation: one member's token never reaches another member's data."""

from __future__ import annotations

import httpx

from tests.integration.factories import PASSWORD, bearer, sign_up


async def test_each_member_endpoint_acts_only_on_the_token_owner(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, display_name="Alice")
    bob = await sign_up(client, display_name="Bob")

    me = await client.get("/v1/app/me", headers=bearer(alice))
    assert me.json()["id"] == alice["member"]["id"]

    changed = await client.patch("/v1/app/me", json={"display_name": "Mallory"}, headers=bearer(alice))
    assert changed.json()["id"] == alice["member"]["id"]
    assert (await client.get("/v1/app/me", headers=bearer(bob))).json()["display_name"] == "Bob"

    # Alice cannot log Bob out with his refresh token, and the attempt leaves his session alive.
    logout = await client.post(
        "/v1/app/sessions/logout",
        json={"refresh_token": bob["tokens"]["refresh_token"]},
        headers=bearer(alice),
    )
    assert logout.status_code == 401
    assert logout.json()["code"] == "refresh_token_invalid"
    bob_refresh = await client.post(
        "/v1/app/sessions/refresh", json={"refresh_token": bob["tokens"]["refresh_token"]}
    )
    assert bob_refresh.status_code == 200

    # Alice's password does not delete Bob, and Bob's token with Alice's password deletes nobody.
    attempt = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD + "x"}, headers=bearer(bob)
    )
    assert attempt.status_code == 401
    assert (
        await client.get("/v1/app/me", headers=bearer(bob_refresh.json()["access_token"]))
    ).status_code == 200


async def test_member_tokens_do_not_open_the_console(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    for path in ("/v1/console/me", "/v1/console/stores"):
        response = await client.get(path, headers=bearer(member))
        assert response.status_code == 401, path
        assert response.json()["code"] == "access_token_invalid"


async def test_member_refresh_token_cannot_refresh_a_staff_session(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    response = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": member["tokens"]["refresh_token"]}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"
