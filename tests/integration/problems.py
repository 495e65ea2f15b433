"""Assertions on RFC 9457 problem responses."""

from __future__ import annotations

import httpx


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
