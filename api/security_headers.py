"""Headers every answer carries unless its handler set its own (the console's pages set a stricter set,
its static assets their own caching): no content-type sniffing, no framing, no referrer, and nothing kept
by shared caches, since most answers are one member's, one terminal's or one marketer's data.

A `before_send` hook rather than a middleware: it also sees the answers litestar gives before any route
(unknown path, wrong method)."""

from __future__ import annotations

from litestar.types import Message, Scope

DEFAULTS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", []))
    present = {bytes(name).lower() for name, _ in headers}
    message["headers"] = headers + [(name, value) for name, value in DEFAULTS if name not in present]
