"""The address a request comes from, as the per-address limits count it.

That is the socket peer uvicorn reports, except behind a proxy uvicorn trusts (`FORWARDED_ALLOW_IPS`,
loopback by default): then the right-most address in X-Forwarded-For that is not a trusted proxy's, i.e.
the one the proxy itself saw. A client cannot choose its own by sending the header through such a proxy.
"""

from __future__ import annotations

from typing import Any

from litestar import Request


def client_host(request: Request[Any, Any, Any]) -> str | None:
    client = request.client
    return client.host if client is not None else None
