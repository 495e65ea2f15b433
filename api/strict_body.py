"""Request bodies are decoded strictly: a number sent as a string is an error, as the OpenAPI says.
A body refused is refused after the caller's credentials are checked, and for what the schema states
(400) apart from what a rule beyond it states (422 `rule_broken`, see `domain.errors.RuleViolation`).

litestar converts handler arguments with msgspec's lax rules (needed for query strings, where every
value arrives as text), and applies them to the JSON body too, so `"total_minor": "100"` would pass.
This hook decodes each body once more, strictly, against the type the handler declares, before any
dependency or handler runs.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler

from api.auth import authenticate
from domain.errors import RuleBroken, RuleViolation

_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
# A NUL character, which JSON can only carry escaped: `\u0000` after an even run of backslashes.
# PostgreSQL text cannot store it, and no field has a use for it.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# One decoder per body type (types live as long as the process; handlers may not).
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder_for(handler: HTTPRouteHandler) -> msgspec.json.Decoder[Any] | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    decoder = _decoders.get(data.annotation)
    if decoder is None:
        decoder = _decoders[data.annotation] = msgspec.json.Decoder(data.annotation, strict=True)
    return decoder


async def decode_body_strictly(request: Request[Any, Any, Any]) -> None:
    decoder = _decoder_for(request.route_handler)
    if decoder is None:
        return
    body = await request.body()
    if not body:
        return  # litestar answers a missing body itself
    if _NUL.search(body):
        await authenticate(request)
        detail = "text must not contain the NUL character (\\u0000)"
        raise ValidationException(detail=detail, extra=[{"message": detail, "source": "body"}])
    try:
        decoder.decode(body)
    except msgspec.ValidationError as error:
        await authenticate(request)
        if isinstance(error.__cause__, RuleViolation):
            raise RuleBroken(str(error), errors=[_error_entry(str(error))]) from error
        raise ValidationException(detail=str(error), extra=[_error_entry(str(error))]) from error
    except msgspec.DecodeError:
        await authenticate(request)
        return  # not JSON at all: litestar's own parser answers 400 bad_request


def _error_entry(message: str) -> dict[str, str]:
    match = _PATH.search(message)
    if match is None:
        return {"message": message, "source": "body"}
    return {"message": message[: match.start()], "key": match.group("path"), "source": "body"}
