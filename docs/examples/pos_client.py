"""A minimal Tsunagari POS client: signs every request, retries safely. Standard library only.

    python pos_client.py --base-url http://127.0.0.1:8000 --key-id tk_... --secret ts_... terminal
    python pos_client.py ... heartbeat --software-version "regi 4.2"
    python pos_client.py ... post /v1/pos/purchases sale.json [--idempotency-key K]

Copy it into a POS integration as a starting point; docs/pos-integration.md explains each step.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

RETRYABLE_STATUS = {409, 429, 502, 503, 504}


class PosClient:
    def __init__(
        self, base_url: str, key_id: str, secret: str, *, timeout_s: float = 10, attempts: int = 4
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.secret = secret
        self.timeout_s = timeout_s
        self.attempts = attempts

    def signed_headers(self, method: str, path_with_query: str, body: bytes) -> dict[str, str]:
        """Sign METHOD, path?query, Unix-seconds timestamp, a fresh nonce and the body's SHA-256, one per
        line: every call signs a new nonce, so no two requests (even identical, in one second) collide."""
        timestamp = str(int(time.time()))
        nonce = uuid.uuid4().hex
        body_hash = hashlib.sha256(body).hexdigest()
        canonical = "\n".join((method.upper(), path_with_query, timestamp, nonce, body_hash))
        signature = hmac.new(self.secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        return {
            "Tsunagari-Key-Id": self.key_id,
            "Tsunagari-Timestamp": timestamp,
            "Tsunagari-Nonce": nonce,
            "Tsunagari-Signature": signature,
            "Content-Type": "application/json",
        }

    def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one logical request; retries re-sign it (a nonce is accepted once) but keep its
        Idempotency-Key, so the server applies a write at most once however often it is retried."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        if method.upper() != "GET" and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        for attempt in range(1, self.attempts + 1):
            headers = self.signed_headers(method, path, body)
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            # The base URL is the operator's configuration (http or https), never request input.
            request = urllib.request.Request(  # noqa: S310
                self.base_url + path, data=body or None, method=method.upper(), headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                    return response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                problem = json.loads(error.read() or b"{}")
                if error.code not in RETRYABLE_STATUS or attempt == self.attempts:
                    return error.code, problem
                delay_s = float(error.headers.get("Retry-After") or 2 ** (attempt - 1))
            except (urllib.error.URLError, TimeoutError):
                if attempt == self.attempts:
                    raise
                delay_s = 2 ** (attempt - 1)
            time.sleep(delay_s)
        raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("terminal", help="who am I: terminal, store and server time")
    heartbeat = commands.add_parser("heartbeat", help="report this terminal alive")
    heartbeat.add_argument("--software-version", default="example-client 1.0")
    post = commands.add_parser("post", help="a write: POST the JSON in FILE to PATH, retried safely")
    post.add_argument("path", help="e.g. /v1/pos/purchases or /v1/pos/refunds")
    post.add_argument("file", help="the JSON body")
    post.add_argument("--idempotency-key", help="default: a new UUID (reuse it to retry the same operation)")
    args = parser.parse_args()
    client = PosClient(args.base_url, args.key_id, args.secret)
    if args.command == "terminal":
        status, body = client.request("GET", "/v1/pos/terminal")
    elif args.command == "heartbeat":
        status, body = client.request(
            "POST", "/v1/pos/heartbeat", {"software_version": args.software_version}
        )
    else:
        with open(args.file, encoding="utf-8") as payload:
            status, body = client.request(
                "POST", args.path, json.load(payload), idempotency_key=args.idempotency_key
            )
    print(status, json.dumps(body, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
