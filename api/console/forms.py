"""HTML forms to the API's request bodies, so a form is checked by the same Structs and problem codes.

A form field is named by its place in the JSON body (`schedule.at`, `variants[1].title`). Each field
is parsed by its declared kind (a browser sends only text); a blank field is left out, as a JSON client
would leave it out. The nested body then goes through `msgspec.convert` against the API's own Struct,
so every bound and rule of the API applies unchanged, with the same `validation_failed` code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from litestar.datastructures import FormMultiDict

from domain.errors import InvalidInput

Body = TypeVar("Body")
Choice = TypeVar("Choice", bound=StrEnum)
Parser = Callable[[str], object]

_WHOLE = re.compile(r"^[+-]?\d{1,15}$")
_DECIMAL = re.compile(r"^[+-]?\d{1,12}(\.\d{1,12})?$")
_PART = re.compile(r"([A-Za-z_]+)(?:\[(\d{1,2})\])?")
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
MAX_FIELD_CHARS = 10_000


class FormInvalid(InvalidInput):
    """A form value or the body it makes is not acceptable; `field` says where, when known."""

    code = "validation_failed"
    status = 400
    title = "The request does not match the expected schema"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


def optional_choice(kind: type[Choice], text: str, field: str) -> Choice | None:
    """A filter's choice from a query or form field: blank is "any" (what a select's first option and
    an htmx request with it send), anything else must name one of `kind`'s values."""
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise FormInvalid(f"{field} must be one of: {', '.join(c.value for c in kind)}", field) from None


def whole_number(text: str) -> int:
    if not _WHOLE.match(text):
        raise ValueError("must be a whole number")
    return int(text)


def decimal_number(text: str) -> float:
    if not _DECIMAL.match(text):
        raise ValueError("must be a number such as 35.6812")
    return float(text)


def plain_text(text: str) -> str:
    return text


def checkbox(text: str) -> bool:
    return text == "on"


def local_datetime(time_zone: str) -> Parser:
    """`<input type="datetime-local">` sends no zone: the time is read on the program's clock."""

    def parse(text: str) -> str:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise ValueError("must be a date and time such as 2026-12-01T09:00") from error
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(time_zone))
        return moment.isoformat()

    return parse


def iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as error:
        raise ValueError("must be a date such as 2026-12-01") from error


def clock_time(text: str) -> str:
    try:
        return time.fromisoformat(text).strftime("%H:%M")
    except ValueError as error:
        raise ValueError("must be a time such as 09:00") from error


def form_values(form: FormMultiDict) -> dict[str, list[str]]:
    """Every text value the form sent, by field (what the page shows again next to an error)."""
    return {key: [v for v in form.getall(key, []) if isinstance(v, str)] for key in form}


def nested(form: FormMultiDict, fields: Mapping[str, Parser], lists: Mapping[str, Parser] = {}) -> Any:
    """The JSON-shaped body of `fields` (one value each) and `lists` (every checked value)."""
    body: dict[str, Any] = {}
    for name, parse in fields.items():
        text = _text(form, name)
        if parse is checkbox:
            _put(body, name, text == "on")  # an unticked box sends nothing: it means no
        elif text:
            _put(body, name, _parsed(name, parse, text))
    for name, parse in lists.items():
        values = [_parsed(name, parse, v.strip()) for v in form.getall(name, []) if isinstance(v, str) and v]
        if values:
            _put(body, name, values)
    return _compact(body)


def body_of(kind: type[Body], data: Any) -> Body:
    """`data` as the API's request Struct, or the API's own validation error, placed at its field."""
    try:
        return msgspec.convert(data, kind, strict=True)
    except msgspec.ValidationError as error:
        message = str(error)
        match = _PATH.search(message)
        if match is None:
            raise FormInvalid(message) from error
        raise FormInvalid(message[: match.start()], match.group("path")) from error


# Hidden fields that name a list item (a condition's `field`, a variant's `key`): an item holding nothing
# else was left blank by the marketer.
_ITEM_NAMES = {"field", "key"}


def _compact(node: Any) -> Any:
    """Drop list items left blank: a second variant not filled in, a condition not used."""
    if isinstance(node, dict):
        return {key: _compact(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_compact(i) for i in node if not (isinstance(i, dict) and set(i) <= _ITEM_NAMES)]
    return node


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > MAX_FIELD_CHARS:
        raise FormInvalid(f"at most {MAX_FIELD_CHARS} characters", name)
    return value.strip()


def _parsed(name: str, parse: Parser, text: str) -> object:
    try:
        return parse(text)
    except ValueError as error:
        raise FormInvalid(str(error), name) from error


def _put(body: dict[str, Any], name: str, value: object) -> None:
    """Place `value` at a dotted path such as `variants[1].title`, making the dicts and lists on the way."""
    parts = name.split(".")
    node: Any = body
    for depth, part in enumerate(parts):
        match = _PART.fullmatch(part)
        assert match is not None, f"form field names are paths: {name}"
        key, index = match.group(1), match.group(2)
        last = depth == len(parts) - 1
        if index is None:
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        position = int(index)
        while len(items) <= position:
            items.append({})
        if last:
            items[position] = value
        else:
            node = items[position]


# The audience builder's conditions, one fixed slot each (a condition left blank is no condition);
# offers target with the trait conditions alone.
SEGMENT_SLOTS = {
    "lifecycle_stage": 0,
    "health_score": 1,
    "rfm": 2,
    "favourite_store": 3,
    "stage": 4,
    "visited_store": 5,
    "near_store": 6,
    "points_expiring": 7,
    "push_permission": 8,
}
TRAIT_FIELDS = ("lifecycle_stage", "health_score", "rfm", "favourite_store")
_CONDITION_VALUES: dict[str, dict[str, Parser]] = {
    "health_score": {"min": whole_number, "max": whole_number},
    "rfm": {"score": plain_text, "min": whole_number, "max": whole_number},
    "favourite_store": {"store_id": plain_text},
    "visited_store": {"store_id": plain_text, "within_days": whole_number},
    "near_store": {"store_id": plain_text, "within_km": decimal_number},
    "points_expiring": {"within_days": whole_number, "min_points": whole_number},
    "push_permission": {"granted": lambda text: text == "true"},
}
_CONDITION_LISTS = {"lifecycle_stage": "in", "stage": "in"}


def segment_fields(prefix: str, trait_only: bool = False) -> tuple[dict[str, Parser], dict[str, Parser]]:
    """The (fields, lists) specs of the audience builder under `prefix` (e.g. `segment`)."""
    fields: dict[str, Parser] = {}
    lists: dict[str, Parser] = {}
    for name, slot in SEGMENT_SLOTS.items():
        if trait_only and name not in TRAIT_FIELDS:
            continue
        at = f"{prefix}.all[{slot}]"
        fields[f"{at}.field"] = plain_text
        for key, parse in _CONDITION_VALUES.get(name, {}).items():
            fields[f"{at}.{key}"] = parse
        if name in _CONDITION_LISTS:
            lists[f"{at}.{_CONDITION_LISTS[name]}"] = plain_text
    return fields, lists


def values_of(body: Mapping[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """A stored body as form values (the inverse of `nested` for plain fields), to fill an edit form."""
    values: dict[str, list[str]] = {}
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            values |= values_of(value, f"{name}.")
        elif isinstance(value, list) and all(not isinstance(v, Mapping | list) for v in value):
            values[name] = [str(v) for v in value]
        elif value is not None and not isinstance(value, list):
            values[name] = ["on" if value is True else str(value)]
    return values


def segment_values(prefix: str, conditions: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    """A stored audience as the builder's values: each condition in its own slot."""
    values: dict[str, list[str]] = {}
    for condition in conditions:
        values |= values_of(condition, f"{prefix}.all[{SEGMENT_SLOTS[condition['field']]}].")
    return values
