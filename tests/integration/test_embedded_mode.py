"""`tsunagari serve` with no URLs starts embedded PostgreSQL and Redis, serves, stops, and keeps data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from commands.demo import ADMIN_EMAIL, DEMO_OFFERS, DEMO_PASSWORD
from tests.conftest import free_port
from tests.integration.factories import PASSWORD, unique_email

START_TIMEOUT_S = 120


@contextmanager
def serving(data_dir: Path, port: int) -> Iterator[tuple[str, float]]:
    env = {k: v for k, v in os.environ.items() if k not in {"TSUNAGARI_DATABASE_URL", "TSUNAGARI_REDIS_URL"}}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.perf_counter() - started < START_TIMEOUT_S, "serve did not become ready"
            time.sleep(0.2)
        yield base, time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    output = process.stdout.read() if process.stdout else ""
    assert exit_code == 0, output


def postgres_running_on(pgdata: Path) -> bool:
    for process in psutil.process_iter(attrs=["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata) in " ".join(process.info["cmdline"] or []):
            return True
    return False


def test_embedded_serve_starts_stops_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "tsunagari-data"
    email = unique_email()
    with serving(data_dir, free_port()) as (base, cold_start_s):
        print(f"embedded cold start to /readyz: {cold_start_s:.1f}s")
        signed_up = httpx.post(
            f"{base}/v1/app/members", json={"email": email, "password": PASSWORD, "display_name": "Persist"}
        )
        assert signed_up.status_code == 201, signed_up.text
        demo_admin = {"email": ADMIN_EMAIL, "password": DEMO_PASSWORD}
        demo_login = httpx.post(f"{base}/v1/console/sessions", json=demo_admin)
        assert demo_login.status_code == 200, demo_login.text
        assert postgres_running_on(data_dir / "pgdata")
    assert not postgres_running_on(data_dir / "pgdata")
    assert (data_dir / "secrets.json").stat().st_mode & 0o077 == 0

    with serving(data_dir, free_port()) as (base, _):
        login = httpx.post(f"{base}/v1/app/sessions", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        stores = httpx.get(
            f"{base}/v1/console/stores",
            params={"limit": 200},
            headers={"Authorization": f"Bearer {demo_login.json()['tokens']['access_token']}"},
        )
        # The same signing key after restart (kept under the data dir), and the demo was not seeded twice.
        assert stores.status_code == 200, stores.text
        assert len(stores.json()["items"]) == 30
        offers = httpx.get(
            f"{base}/v1/app/offers",
            headers={"Authorization": f"Bearer {login.json()['tokens']['access_token']}"},
        )
        assert offers.status_code == 200, offers.text
        assert len(offers.json()["offers"]) == len(DEMO_OFFERS)  # seeded once, all open to a new member
