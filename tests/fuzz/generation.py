"""Schemathesis hooks (`SCHEMATHESIS_HOOKS=tests.fuzz.generation`): what it draws, kept to two rules the
OpenAPI states but its generators do not follow on their own.

- Times and dates are written in the years 2000-2099 (the pattern on every `date-time` and `date`,
  domain/times.py). Schemathesis draws them from 0001-9999 and drops what the pattern refuses; with 98 %
  dropped its health check gives up on every operation that takes a time. Drawn inside the years, with
  any offset and precision, every value the schema allows stays reachable and none is wasted; half are
  drawn within days of now, where the windows of sales, check-ins and events lie, so those get past them.
- An integer is written without a fraction: JSON Schema since draft 6 counts `100.0` as an integer, and
  Schemathesis sends some integers that way, but this API refuses them as it refuses `"100"`
  (tests/integration/test_request_integrity.py; a register that computes points in floating point
  should hear of it at its first sale, not at its first 100.5). The body's whole floats go out as
  integers; every other value is left as drawn.

And one rule of using it: a client sends a new Idempotency-Key for each write it means
(docs/pos-integration.md). Drawn from its pattern, keys repeat across cases with other bodies and meet
`422 idempotency_key_reused` before anything else is judged; each well-formed key drawn is replaced by a
fresh one, a malformed one is sent as drawn.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import schemathesis
from hypothesis import strategies as st

from infra.idempotency import KEY_PATTERN

FIRST = datetime(2000, 1, 1)
LAST = datetime(2099, 12, 31, 23, 59, 59, 999_999)
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _written(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


NOW = datetime.now(UTC).replace(tzinfo=None)  # the server's clock is UTC
NEAR_NOW = (NOW - timedelta(days=3), NOW + timedelta(days=3))
TIMES = st.one_of(
    st.datetimes(*NEAR_NOW, timezones=OFFSETS), st.datetimes(FIRST, LAST, timezones=OFFSETS)
).map(_written)
DATES = st.one_of(st.dates(NEAR_NOW[0].date(), NEAR_NOW[1].date()), st.dates(FIRST.date(), LAST.date())).map(
    lambda day: day.isoformat()
)

schemathesis.openapi.format("date-time", TIMES)
schemathesis.openapi.format("date", DATES)


def _without_whole_floats(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _without_whole_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_whole_floats(item) for item in value]
    return value


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    return _without_whole_floats(body)


@schemathesis.hook
def before_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]
) -> None:
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and re.match(KEY_PATTERN, key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
