"""Offer selection with 200 eligible offers: GET /v1/app/offers beside ceilings measured in the same run.

1. A scratch database with `--members` members and `--offers` active offers (bonus points on one of 20
   categories each), and a learned policy version (every offer has its own model) so scoring is real.
2. In-process: the policy alone (`draw_slate` over the offers, 5 slots): p50/p99 per decision.
3. Over HTTP, two server processes, `--concurrency` clients, the list never reused (every request decides
   and writes its decision, items and timeline event):
   - ceiling A: GET /healthz (the HTTP stack alone);
   - ceiling B: GET /v1/app/points (an authenticated read of the member's balances);
   - GET /v1/app/offers; reported as requests/s, p50/p99, and its ratio to each ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import msgspec
import numpy as np

from bench.harness import bench_settings, copy_members, fresh_database, run_load, running_server
from domain.tokens import Audience, issue_access_token
from infra.db import Database, create_engine
from offers.catalogue import CatalogueRules, change_state, create_offer
from offers.program import OfferProgram
from offers.rules.features import Candidate, Context, context_vector, feature_matrix
from offers.rules.policy import LinearModel, Observation, Scorer, draw_slate
from offers.rules.terms import BonusPoints, OfferState
from offers.schemas import OfferDraft
from offers.tables import OfferPolicyVersion

DATABASE = "tsunagari_bench_offers"
PROGRAM = OfferProgram(reuse_list_minutes=0, min_decision_seconds=0)


async def load_offers(url: str, count: int, now: datetime) -> list[uuid.UUID]:
    db = Database(create_engine(url, 2))
    rules = CatalogueRules("Asia/Tokyo", 1, PROGRAM)
    ids = []
    async with db.unit_of_work() as uow:
        for n in range(count):
            draft = OfferDraft(
                name=f"Bench offer {n}",
                terms=BonusPoints(points=50 + n % 200, category=f"category-{n % 20}"),
                title=f"Offer {n}",
                body="A benchmark offer.",
                valid_from=now.date() - timedelta(days=1),
                valid_until=now.date() + timedelta(days=30),
            )
            view = await create_offer(uow, rules, draft, now)
            await change_state(uow, rules, view.id, OfferState.ACTIVE, now)
            ids.append(view.id)
    await db.dispose()
    return ids


def trained_model(offer_ids: list[uuid.UUID], rng: np.random.Generator) -> LinearModel:
    context = context_vector(Context(tokens=("lifecycle=new", "time=evening"), numbers=(("health", 0.2),)))
    observations = []
    for _ in range(20 * len(offer_ids)):
        key = str(offer_ids[int(rng.integers(0, len(offer_ids)))])
        features = feature_matrix(
            context, [Candidate(key, affinity=float(rng.random()))], int(rng.integers(1, 6))
        )[0]
        observations.append(Observation(key, features, float(rng.random() < 0.1)))
    return LinearModel().learned(observations)


async def install_policy(url: str, offer_ids: list[uuid.UUID], now: datetime) -> LinearModel:
    """A learned policy version in which every offer has its own model, so scoring is real work."""
    model = trained_model(offer_ids, np.random.default_rng(7))
    db = Database(create_engine(url, 2))
    async with db.unit_of_work() as uow:
        uow.session.add(
            OfferPolicyVersion(
                version=1,
                created_at=now,
                model=model.to_bytes(),
                observations=model.observations,
                decisions_learned=0,
            )
        )
    await db.dispose()
    return model


def policy_alone(model: LinearModel, offer_ids: list[uuid.UUID], decisions: int) -> tuple[float, float]:
    scorer = Scorer(model, PROGRAM.selection)
    rng = np.random.default_rng(1)
    candidates = [Candidate(str(offer_id), affinity=0.1, cost=0.1) for offer_id in offer_ids]
    context = context_vector(Context(tokens=("lifecycle=active", "time=evening"), numbers=(("health", 0.5),)))
    timings = []
    for _ in range(decisions):
        started = time.perf_counter()
        draw_slate(scorer, context, candidates, PROGRAM.slots, rng)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(0.99 * len(timings))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4_000)
    args = parser.parse_args()

    now = datetime.now(UTC)
    url = await fresh_database(DATABASE)
    connection = await asyncpg.connect(url)
    members = await copy_members(connection, args.members, now)
    await connection.close()
    offer_ids = await load_offers(url, args.offers, now)
    model = await install_policy(url, offer_ids, now)
    p50, p99 = policy_alone(model, offer_ids, 2_000)
    print(
        f"policy alone, {args.offers} candidates, {PROGRAM.slots} slots: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms per decision"
    )

    settings = msgspec.structs.replace(
        bench_settings(url, workers=2), offer_program=msgspec.json.encode(PROGRAM).decode()
    )
    key = settings.key_ring("jwt_signing_key").current
    tokens = [issue_access_token(key, m, Audience.MEMBER, None, now, timedelta(hours=2))[0] for m in members]

    def authorised(n: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}

    async def health(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get("/healthz")

    async def points(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get("/v1/app/points", headers=authorised(n))

    async def offers(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get("/v1/app/offers", headers=authorised(n))

    with running_server(settings) as base:
        await run_load(args.concurrency, 200, offers, base)  # warm-up: connections, the model in each process
        health_result = await run_load(args.concurrency, args.requests, health, base)
        points_result = await run_load(args.concurrency, args.requests, points, base)
        offers_result = await run_load(args.concurrency, args.requests, offers, base)
    print(health_result.line(f"ceiling A: GET /healthz ({args.concurrency} clients)"))
    print(points_result.line(f"ceiling B: GET /v1/app/points ({args.concurrency} clients)"))
    print(
        offers_result.line(f"GET /v1/app/offers, {args.offers} eligible offers ({args.concurrency} clients)")
    )
    print(
        f"ratio: offers / healthz = {offers_result.per_second / health_result.per_second:.2f}, "
        f"offers / points = {offers_result.per_second / points_result.per_second:.2f}"
    )
    connection = await asyncpg.connect(url)
    decisions = await connection.fetchval("SELECT count(*) FROM offer_decisions")
    await connection.close()
    print(f"decisions logged: {decisions}")


if __name__ == "__main__":
    asyncio.run(main())
