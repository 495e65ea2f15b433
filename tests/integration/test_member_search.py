"""Staff find members by the card number they show or by their email; erased members are never found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accounts.directory import MemberSummary, search_members
from accounts.errors import InvalidMemberSearch
from infra.db import Database
from tests.integration.factories import PASSWORD, bearer, sign_up


async def find(db: Database, text: str, limit: int = 50) -> list[MemberSummary]:
    async with db.unit_of_work() as uow:
        return await search_members(uow, text, limit)


def emails(found: list[MemberSummary]) -> list[str]:
    return [member.email for member in found]


def printed(card_number: str, separator: str) -> str:
    return separator.join(card_number[i : i + 4] for i in range(0, 16, 4))


async def test_a_card_number_is_found_as_printed_with_spaces_or_hyphens(
    client: httpx.AsyncClient, db: Database
) -> None:
    member = (await sign_up(client, email="hanako@example.jp"))["member"]
    await sign_up(client, email="taro@example.jp")
    card = member["card_number"]
    for typed in (card, printed(card, " "), printed(card, "-"), f"  {printed(card, ' - ')} "):
        (found,) = await find(db, typed)
        assert found == MemberSummary(
            id=found.id,
            card_number=card,
            email="hanako@example.jp",
            display_name="Hanako Yamada",
            joined_at=found.joined_at,
        )
        assert str(found.id) == member["id"]
    assert await find(db, card[:-1] + str((int(card[-1]) + 1) % 10)) == []  # one digit off: nobody


async def test_the_card_holder_comes_before_emails_that_begin_with_the_same_digits(
    client: httpx.AsyncClient, db: Database
) -> None:
    holder = (await sign_up(client, email="zed@example.jp"))["member"]
    await sign_up(client, email=f"{holder['card_number']}@example.jp")
    found = await find(db, printed(holder["card_number"], "-"))
    assert emails(found) == ["zed@example.jp"]  # hyphens: not the beginning of any email
    found = await find(db, holder["card_number"])
    assert emails(found) == ["zed@example.jp", f"{holder['card_number']}@example.jp"]


async def test_an_email_is_found_exactly_or_by_its_beginning_in_any_case(
    client: httpx.AsyncClient, db: Database
) -> None:
    for email in ("hanako.yamada@example.jp", "hanako@example.jp", "taro@example.jp", "ahanako@example.jp"):
        await sign_up(client, email=email)
    assert emails(await find(db, "HANAKO")) == ["hanako.yamada@example.jp", "hanako@example.jp"]
    # The exact address comes first, before addresses it is the beginning of.
    await sign_up(client, email="hanako@example.jp.example.com")
    assert emails(await find(db, "Hanako@Example.JP")) == [
        "hanako@example.jp",
        "hanako@example.jp.example.com",
    ]
    assert emails(await find(db, "hanako", limit=1)) == ["hanako.yamada@example.jp"]
    assert await find(db, "yamada") == []  # a prefix, not a substring
    assert await find(db, "   ") == []


async def test_percent_and_underscore_in_the_text_match_only_themselves(
    client: httpx.AsyncClient, db: Database
) -> None:
    for email in ("100%club@example.jp", "1000club@example.jp", "a_b@example.jp", "axb@example.jp"):
        await sign_up(client, email=email)
    assert emails(await find(db, "100%")) == ["100%club@example.jp"]
    assert emails(await find(db, "a_")) == ["a_b@example.jp"]
    assert await find(db, "%") == []
    assert await find(db, "_") == []


async def test_erased_members_are_not_found(client: httpx.AsyncClient, db: Database) -> None:
    session: dict[str, Any] = await sign_up(client, email="leaving@example.jp")
    card = session["member"]["card_number"]
    assert len(await find(db, card)) == 1
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(session)
    )
    assert erased.status_code == 204
    assert await find(db, card) == []
    assert await find(db, "leaving") == []


async def test_search_text_and_result_count_are_bounded(db: Database) -> None:
    assert await find(db, "a" * 254) == []
    with pytest.raises(InvalidMemberSearch):
        await find(db, "a" * 255)
    for limit in (0, 51):
        with pytest.raises(InvalidMemberSearch):
            await find(db, "hanako", limit=limit)
