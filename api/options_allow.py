"""`OPTIONS` answers with every method of its path in `Allow` (RFC 9110 §10.2.1).

litestar builds the automatic OPTIONS handler of a path with the first handler registered there and
keeps it when more are added, so `OPTIONS /v1/app/me` listed `DELETE, OPTIONS` while GET and PATCH
answered too. The route itself knows all of its methods; this hook puts them in the header.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


async def allow_every_method(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    methods = _methods_beside(scope["litestar_app"], scope.get("route_handler"))
    if methods is None:
        return
    allow = ", ".join(sorted(methods)).encode()
    headers = [(name, value) for name, value in message.get("headers", []) if bytes(name).lower() != b"allow"]
    message["headers"] = [*headers, (b"allow", allow)]


def _methods_beside(app: Litestar, handler: object) -> set[str] | None:
    """The methods of the route whose handlers include `handler` (the OPTIONS one that answered)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and handler in route.route_handlers:
            return set(route.methods)
    return None
