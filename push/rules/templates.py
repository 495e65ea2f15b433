"""Campaign messages: personal fields in a title and body, and the FCM payload's size limit.

Fields are written `{display_name}`; only the fields below exist. Every message that could be rendered
must fit FCM's 4,096 bytes, so a template is checked at its worst: each field at its longest, in
four-byte characters (emoji), beside the largest data the message carries. That bound holds for every
member because a field's value is cut to its length and its control characters (six bytes each once
JSON-escaped) become spaces when it is filled in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from push.errors import MessageTooLarge, UnknownMessageField

MAX_PAYLOAD_BYTES = 4096
# The longest each field may render to, in characters.
FIELDS = {
    "display_name": 80,
    "points_balance": 20,
    "stage": 12,
    "favourite_store": 120,
    "points_expiring": 20,
    "points_expiring_on": 10,
}
_FIELD = re.compile(r"\{([^{}]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WIDEST_CHARACTER = "\N{GRINNING FACE}"  # four bytes in UTF-8, the most a character takes
_LONGEST_ID = "0" * 36


def fields_in(text: str) -> set[str]:
    return set(_FIELD.findall(text))


def render(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{field}` replaced by its value, cut to the field's length and without control
    characters (an unknown field is a KeyError)."""
    return _FIELD.sub(lambda match: _fitted(match.group(1), values[match.group(1)]), text)


def _fitted(field: str, value: str) -> str:
    return _CONTROL.sub(" ", value[: FIELDS[field]])


def payload(title: str, body: str, data: Mapping[str, str]) -> dict[str, object]:
    return {"notification": {"title": title, "body": body}, "data": dict(data)}


def payload_bytes(title: str, body: str, data: Mapping[str, str]) -> int:
    return len(msgspec.json.encode(payload(title, body, data)))


def worst_case_data(deep_link: str | None) -> dict[str, str]:
    """The data every message carries, at its largest (ids are UUIDs)."""
    data = {"delivery_id": _LONGEST_ID, "campaign_id": _LONGEST_ID, "variant": "XXXXXXXXXXXXXXXX"}
    if deep_link is not None:
        data["deep_link"] = deep_link
    return data


def check_message(title: str, body: str, deep_link: str | None) -> None:
    """UnknownMessageField for a field that does not exist; MessageTooLarge when some member's message
    could exceed FCM's limit."""
    unknown = (fields_in(title) | fields_in(body)) - FIELDS.keys()
    if unknown:
        raise UnknownMessageField(
            f"unknown fields {sorted(unknown)}; available: {', '.join(sorted(FIELDS))}",
            fields=sorted(unknown),
        )
    longest = {field: _WIDEST_CHARACTER * length for field, length in FIELDS.items()}
    size = payload_bytes(render(title, longest), render(body, longest), worst_case_data(deep_link))
    if size > MAX_PAYLOAD_BYTES:
        raise MessageTooLarge(
            f"with every field at its longest the message takes {size} bytes; FCM takes {MAX_PAYLOAD_BYTES}",
            worst_case_bytes=size,
            limit_bytes=MAX_PAYLOAD_BYTES,
        )
