"""Schemathesis hooks (`SCHEMATHESIS_HOOKS=tests.fuzz.pos_signing`): every generated POS request is signed
as docs/pos-integration.md tells a register's developers, from that document alone (none of the server's
signing code), with the terminal named by TSUNAGARI_FUZZ_KEY_ID and TSUNAGARI_FUZZ_SECRET.

The signature goes on as a `requests` auth, so it is computed over the exact body bytes sent, and the
`ignored_auth` check's probes, which leave the auth behind, go out unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from urllib.parse import urlsplit

import requests
from schemathesis.auths import GLOBAL_AUTH_STORAGE

import tests.fuzz.generation  # noqa: F401  (what the other runs draw, this one draws too)


class DocumentedSignature(requests.auth.AuthBase):
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise TypeError("Schemathesis sends whole bodies, not streams")
        url = urlsplit(request.url or "")
        path = f"{url.path}?{url.query}" if url.query else url.path
        timestamp = str(int(time.time()))
        nonce = uuid.uuid4().hex
        canonical = "\n".join(
            (request.method or "", path, timestamp, nonce, hashlib.sha256(body).hexdigest())
        )
        request.headers["Tsunagari-Key-Id"] = self.key_id
        request.headers["Tsunagari-Timestamp"] = timestamp
        request.headers["Tsunagari-Nonce"] = nonce
        request.headers["Tsunagari-Signature"] = hmac.new(
            self.secret.encode(), canonical.encode(), hashlib.sha256
        ).hexdigest()
        return request


GLOBAL_AUTH_STORAGE.set_from_requests(
    DocumentedSignature(os.environ["TSUNAGARI_FUZZ_KEY_ID"], os.environ["TSUNAGARI_FUZZ_SECRET"])
)
