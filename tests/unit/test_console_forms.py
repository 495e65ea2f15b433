"""HTML form fields to the API's request bodies: paths, typed parsing, blanks, and the API's own errors."""

from __future__ import annotations

import msgspec
import pytest
from litestar.datastructures import FormMultiDict

from api.console.forms import (
    MAX_FIELD_CHARS,
    FormInvalid,
    body_of,
    checkbox,
    decimal_number,
    iso_date,
    local_datetime,
    nested,
    optional_choice,
    plain_text,
    whole_number,
)
from domain.interactions import Phase


class Variant(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    title: str


class Body(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    limit: int
    variants: list[Variant]
    loud: bool = False


def form(*pairs: tuple[str, str]) -> FormMultiDict:
    return FormMultiDict(list(pairs))


def test_field_names_are_paths_into_the_body_and_blank_list_items_are_dropped() -> None:
    sent = form(
        ("name", " Linen week "),
        ("limit", "30"),
        ("variants[0].key", "a"),
        ("variants[0].title", "Hello"),
        ("variants[1].key", "b"),  # the second variant was left blank
    )
    fields = {
        "name": plain_text,
        "limit": whole_number,
        "variants[0].key": plain_text,
        "variants[0].title": plain_text,
        "variants[1].key": plain_text,
        "variants[1].title": plain_text,
        "loud": checkbox,
    }
    data = nested(sent, fields)
    assert data == {
        "name": "Linen week",
        "limit": 30,
        "variants": [{"key": "a", "title": "Hello"}],
        "loud": False,
    }
    assert body_of(Body, data) == Body("Linen week", 30, [Variant("a", "Hello")])


@pytest.mark.parametrize("text", ["1e3", "3.0", "ten", "0x10", "1" * 16, "NaN"])
def test_a_whole_number_field_takes_only_digits(text: str) -> None:
    with pytest.raises(FormInvalid) as refused:
        nested(form(("limit", text)), {"limit": whole_number})
    assert refused.value.field == "limit"
    assert refused.value.code == "validation_failed"


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e5", "35,68"])
def test_a_decimal_field_refuses_what_is_not_a_plain_decimal(text: str) -> None:
    with pytest.raises(FormInvalid):
        nested(form(("km", text)), {"km": decimal_number})


def test_an_oversized_field_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(FormInvalid) as refused:
        nested(form(("name", "x" * (MAX_FIELD_CHARS + 1))), {"name": plain_text})
    assert refused.value.field == "name"


def test_a_local_time_without_zone_is_read_on_the_programs_clock() -> None:
    data = nested(form(("at", "2026-12-01T09:00")), {"at": local_datetime("Asia/Tokyo")})
    assert data == {"at": "2026-12-01T09:00:00+09:00"}
    with pytest.raises(FormInvalid):
        nested(form(("day", "2026-13-01")), {"day": iso_date})


def test_the_apis_validation_error_names_the_field_it_is_about() -> None:
    data = {"name": "x", "limit": "30", "variants": []}  # a number sent as text is an error, as in the API
    with pytest.raises(FormInvalid) as refused:
        body_of(Body, data)
    assert refused.value.field == "limit"


def test_a_filter_choice_is_blank_for_any_and_otherwise_one_of_its_values() -> None:
    assert optional_choice(Phase, "", "phase") is None
    assert optional_choice(Phase, "buy", "phase") is Phase.BUY
    with pytest.raises(FormInvalid) as refused:
        optional_choice(Phase, "BUY<script>", "phase")
    assert refused.value.field == "phase"
