"""The hot paths of issue 12: the requests wrk sends for each, and the identities a SQL replay varies.

Request `n` of a path picks its actors (member, terminal, store, sale) from `n`, and so does row `n` of
the path's replay pool: the captured request is request 0, so pool row 0 holds exactly the identities
that appear in its statements. Single-use requests (signed POS requests, Idempotency-Keys, rotating
member codes that may pay with points once, client event ids) are made unique by their `tag`, under a
prefix per path: the POS paths share terminals, so their receipts and keys must differ too.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from geopy.distance import geodesic

from bench.harness import ABSENT, request_line
from bench.hot_path_data import REDEEM_SLOTS, STORES_WITH_TERMINALS, PosTerminal, World
from bench.register_load import sale_body
from bench.timeline_load import EVENTS_PER_BATCH
from infra.locks import lock_key
from points.member_codes import member_code

CAPTURE_TAG = "sbscap"  # in the captured request's unique keys; the replay varies whatever contains it
# Sent just before the captured request 0, and by the same terminal (see shopper_terminal), so that the
# capture sees the steady state (the terminal's cached identity), not a first request's cache misses.
WARM_UP_REQUEST = STORES_WITH_TERMINALS
REDEEM_POINTS = 100


@dataclass(frozen=True)
class HotPath:
    name: str
    label: str
    target: str
    line: Callable[[int, str, datetime], str]  # request n, its unique tag, when its member code is shown
    identities: Callable[[int], dict[str, str]]  # what of request n's actors PostgreSQL sees
    pool_size: int  # distinct identity rows (a replay cycles through them)
    single_use: bool
    unique_rows: bool = False  # its writes are unique per identity row: a replay must never reuse one


def _line(
    method: str,
    path: str,
    *,
    terminal: PosTerminal | None = None,
    key: str = ABSENT,
    token: str = ABSENT,
    body: object = None,
) -> str:
    """One request in wrk/replay.lua's format; POS requests are signed now."""
    raw = ABSENT if body is None else json.dumps(body, separators=(",", ":"))
    signer = None if terminal is None else (terminal.key_id, terminal.secret)
    return request_line(method, path, terminal=signer, key=key, token=token, body=raw)


def _pos_identities(terminal: PosTerminal, **more: str) -> dict[str, str]:
    return {
        "terminal_key": terminal.key_id,
        "terminal": str(terminal.id),
        "store": str(terminal.store_id),
        **more,
    }


def hot_paths(world: World) -> list[HotPath]:
    shoppers, redeemers, originals = world.shoppers, world.redeemers, world.originals
    terminals, stores, checkers = world.terminals, world.stores, world.check_in_members

    def shopper_terminal(n: int, count: int) -> PosTerminal:
        # Shoppers keep to their store (one code at two stores at once is refused), any of its registers.
        return terminals[4 * (n % count % STORES_WITH_TERMINALS) + n // count % 4]

    def purchase(n: int, tag: str, at: datetime) -> str:
        shopper = shoppers[n % len(shoppers)]
        body = sale_body(f"R-{tag}", datetime.now(UTC), 300 + n * 7919 % 19_700)
        body["member_code"] = member_code(shopper.card, 0, shopper.device_secrets[0], at)
        terminal = shopper_terminal(n, len(shoppers))
        return _line("POST", "/v1/pos/purchases", terminal=terminal, key=f"purchase-{tag}", body=body)

    def purchase_identities(n: int) -> dict[str, str]:
        shopper = shoppers[n % len(shoppers)]
        terminal = shopper_terminal(n, len(shoppers))
        return _pos_identities(terminal, member=str(shopper.member_id), card=shopper.card)

    def redeeming(n: int, tag: str, at: datetime) -> str:
        redeemer, slot = redeemers[n % len(redeemers)], n // len(redeemers) % REDEEM_SLOTS
        body = sale_body(f"P-{tag}", datetime.now(UTC), 300 + n * 7919 % 19_700)
        body["member_code"] = member_code(redeemer.card, slot, redeemer.device_secrets[slot], at)
        body["points_to_redeem"] = REDEEM_POINTS
        terminal = shopper_terminal(n, len(redeemers))
        return _line("POST", "/v1/pos/purchases", terminal=terminal, key=f"redeem-{tag}", body=body)

    def redeeming_identities(n: int) -> dict[str, str]:
        redeemer = redeemers[n % len(redeemers)]
        terminal = shopper_terminal(n, len(redeemers))
        # The captured request drew on the member's first-expiring lot; a replay, repeating the same
        # take thousands of times, draws on the lot holding most of the member's points.
        lots = world.first_lots if n == 0 else world.seed_lots
        lot = str(lots[redeemer.member_id])
        return _pos_identities(terminal, member=str(redeemer.member_id), card=redeemer.card, lot=lot)

    def refund(n: int, tag: str, at: datetime) -> str:
        sale = originals[n % len(originals)]
        body = {
            "refund_receipt_id": f"F-{tag}",
            "original_receipt_id": sale.receipt_id,
            "refunded_at": datetime.now(UTC).isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}],
        }
        terminal = terminals[4 * sale.store_no + n // len(originals) % 4]
        return _line("POST", "/v1/pos/refunds", terminal=terminal, key=f"refund-{tag}", body=body)

    def refund_identities(n: int) -> dict[str, str]:
        sale = originals[n % len(originals)]
        terminal = terminals[4 * sale.store_no + n // len(originals) % 4]
        return _pos_identities(
            terminal,
            member=str(sale.member_id),
            purchase=str(sale.purchase_id),
            receipt=sale.receipt_id,
            lot=str(sale.lot_id),
        )

    def token(n: int) -> str:
        return world.tokens[shoppers[n % len(shoppers)].member_id]

    def member_identities(n: int) -> dict[str, str]:
        return {"member": str(shoppers[n % len(shoppers)].member_id)}

    def reading(path: str) -> Callable[[int, str, datetime], str]:
        return lambda n, tag, at: _line("GET", path, token=token(n))

    def nearby(n: int, tag: str, at: datetime) -> str:
        rng = random.Random(n)
        _, lat, lon = stores[rng.randrange(len(stores))]
        if n % 5 == 0:  # a fifth anywhere in Japan, as in bench.geofence_load
            lat, lon = rng.uniform(31, 44), rng.uniform(130, 145)
        lat, lon = lat + rng.gauss(0, 0.01), lon + rng.gauss(0, 0.01)
        return _line("GET", f"/v1/app/stores/nearby?lat={lat:.6f}&lon={lon:.6f}&limit=10", token=token(n))

    def events(n: int, tag: str, at: datetime) -> str:
        occurred_at = datetime.now(UTC).isoformat()
        batch = [
            {"client_event_id": f"ev-{tag}-{i}", "kind": "app_opened", "occurred_at": occurred_at}
            for i in range(EVENTS_PER_BATCH)
        ]
        return _line("POST", "/v1/app/events", token=token(n), body={"events": batch})

    def check_in_actors(n: int) -> tuple[int, int]:
        # Each member checks in once per run; over the replay, member and store pairs never repeat.
        member_no = n % len(checkers)
        return member_no, (member_no + n // len(checkers)) % len(stores)

    def check_in(n: int, tag: str, at: datetime) -> str:
        member_no, store_no = check_in_actors(n)
        store_id, lat, lon = stores[store_no]
        rng = random.Random(n)
        near = geodesic(meters=rng.uniform(0, 60)).destination((lat, lon), rng.uniform(0, 360))
        body = {
            "store_id": str(store_id),
            "latitude": near.latitude,
            "longitude": near.longitude,
            "accuracy_m": 15,
            "fix_at": datetime.now(UTC).isoformat(),
            "trigger": "geofence_dwell",
        }
        member_token = world.tokens[checkers[member_no]]
        return _line("POST", "/v1/app/check-ins", key=f"check-in-{tag}", token=member_token, body=body)

    def check_in_identities(n: int) -> dict[str, str]:
        member_no, store_no = check_in_actors(n)
        return {"member": str(checkers[member_no]), "store": str(stores[store_no][0])}

    pos_purchases = "/v1/pos/purchases"
    return [
        HotPath("purchase", "POS purchase, member", pos_purchases, purchase, purchase_identities,
                4 * len(shoppers), single_use=True),
        HotPath("redeem", "POS purchase, member, redeems", pos_purchases, redeeming, redeeming_identities,
                4 * len(redeemers), single_use=True),
        HotPath("refund", "POS refund (1 line item)", "/v1/pos/refunds", refund, refund_identities,
                4 * len(originals), single_use=True),
        HotPath("points", "GET /v1/app/points", "/v1/app/points", reading("/v1/app/points"),
                member_identities, len(shoppers), single_use=False),
        HotPath("check-in", "POST /v1/app/check-ins", "/v1/app/check-ins", check_in, check_in_identities,
                len(checkers) * len(stores), single_use=True, unique_rows=True),
        HotPath("nearby", "GET /v1/app/stores/nearby", "/v1/app/stores/nearby", nearby, member_identities,
                len(shoppers), single_use=False),
        HotPath("events", f"POST /v1/app/events ({EVENTS_PER_BATCH}/batch)", "/v1/app/events", events,
                member_identities, len(shoppers), single_use=True),
        HotPath("timeline", "GET /v1/app/timeline", "/v1/app/timeline", reading("/v1/app/timeline"),
                member_identities, len(shoppers), single_use=False),
        HotPath("offers", "GET /v1/app/offers (decides)", "/v1/app/offers", reading("/v1/app/offers"),
                member_identities, len(shoppers), single_use=False),
    ]  # fmt: skip


def with_lock_keys(identities: dict[str, str]) -> dict[str, str]:
    """The identities and the advisory-lock keys the app derives from each id (infra.locks): a replay
    must vary those with them, or one constant key would serialise every replayed transaction."""
    keys = {}
    for field, value in identities.items():
        try:
            subject = uuid.UUID(value)
        except ValueError:
            continue
        keys[f"{field}_lock"] = str(lock_key("", subject)[1])
    return identities | keys


WEB_CEILING = "GET /healthz"


def healthz_line(n: int, tag: str, at: datetime) -> str:
    return _line("GET", "/healthz")
