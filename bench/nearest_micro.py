"""Micro-benchmark of the in-memory nearest-store index (`geofence.nearest.StoreIndex`), no I/O.

    .venv/bin/python -m bench.nearest_micro [--stores 50000] [--queries 2000] [--seed 1]

Stores: dense clusters shaped like store networks in big cities (Tokyo and Osaka densest), plus a share
spread over the world. Queries: four in five near a city (members near stores), one in five anywhere on
earth (travellers, oceans, the poles), where the nearest stores may be thousands of km away.
`--cities-only` drops the worldwide share, so far queries find their nearest stores in a distant dense city
(the index's worst case: ~150 geodesics instead of ~20).

Prints the build time and p50/p99/max of `nearest()` in milliseconds, for k=20 and k=20 within 5 km.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import uuid

from geofence.nearest import IndexedStore, StoreIndex

# (name, latitude, longitude, share of the stores, spread in degrees: one standard deviation)
CITIES = [
    ("Tokyo", 35.68, 139.76, 0.28, 0.15),
    ("Osaka", 34.69, 135.50, 0.14, 0.12),
    ("Nagoya", 35.17, 136.91, 0.06, 0.08),
    ("Fukuoka", 33.59, 130.40, 0.03, 0.06),
    ("Sapporo", 43.06, 141.35, 0.02, 0.05),
    ("Sendai", 38.27, 140.87, 0.015, 0.05),
    ("Seoul", 37.57, 126.98, 0.05, 0.10),
    ("Shanghai", 31.23, 121.47, 0.06, 0.15),
    ("Beijing", 39.90, 116.40, 0.03, 0.12),
    ("Taipei", 25.03, 121.56, 0.03, 0.06),
    ("Hong Kong", 22.32, 114.17, 0.02, 0.05),
    ("Singapore", 1.35, 103.82, 0.015, 0.05),
    ("Bangkok", 13.75, 100.50, 0.015, 0.08),
    ("London", 51.51, -0.13, 0.02, 0.10),
    ("Paris", 48.86, 2.35, 0.015, 0.08),
    ("New York", 40.71, -74.01, 0.02, 0.10),
    ("Los Angeles", 34.05, -118.24, 0.01, 0.15),
    ("Sydney", -33.87, 151.21, 0.005, 0.10),
]
WORLDWIDE_SHARE = 1.0 - sum(city[3] for city in CITIES)
Location = tuple[float, float]


def anywhere(rng: random.Random) -> Location:
    """Uniform over the sphere's area."""
    return math.degrees(math.asin(rng.uniform(-1.0, 1.0))), rng.uniform(-180.0, 180.0)


def near(rng: random.Random, city: tuple[str, float, float, float, float], widen: float = 1.0) -> Location:
    _, latitude, longitude, _, spread = city
    return (
        max(-90.0, min(90.0, rng.gauss(latitude, spread * widen))),
        (rng.gauss(longitude, spread * widen) + 180.0) % 360.0 - 180.0,
    )


def make_stores(count: int, rng: random.Random, worldwide: bool) -> list[IndexedStore]:
    weights = [city[3] for city in CITIES] + [WORLDWIDE_SHARE if worldwide else 0.0]
    stores = []
    for choice in rng.choices(range(len(CITIES) + 1), weights, k=count):
        latitude, longitude = anywhere(rng) if choice == len(CITIES) else near(rng, CITIES[choice])
        stores.append(IndexedStore(uuid.UUID(int=rng.getrandbits(122)), latitude, longitude))
    return stores


def make_queries(count: int, rng: random.Random) -> list[tuple[str, Location]]:
    weights = [city[3] for city in CITIES]
    queries = []
    for _ in range(count):
        if rng.random() < 0.8:
            queries.append(("near stores", near(rng, rng.choices(CITIES, weights)[0], widen=1.5)))
        else:
            queries.append(("anywhere", anywhere(rng)))
    return queries


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def summary(samples_ms: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples_ms):6.2f}  p99 {percentile(samples_ms, 0.99):6.2f}"
        f"  max {max(samples_ms):7.2f}  (n={len(samples_ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cities-only",
        action="store_true",
        help="no stores spread over the world: queries far from every city find their nearest stores in a "
        "distant dense city (the worst case of the index)",
    )
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    stores = make_stores(arguments.stores, rng, worldwide=not arguments.cities_only)
    queries = make_queries(arguments.queries, rng)

    started = time.perf_counter()
    index = StoreIndex(stores)
    print(f"build: {len(index):,} stores in {(time.perf_counter() - started) * 1000:.0f} ms")

    for label, radius_m in (("k=20", None), ("k=20, radius 5 km", 5_000.0)):
        for _, (latitude, longitude) in queries[:50]:  # warm-up
            index.nearest(latitude, longitude, k=20, radius_m=radius_m)
        by_kind: dict[str, list[float]] = {}
        found = 0
        for kind, (latitude, longitude) in queries:
            started = time.perf_counter()
            found += len(index.nearest(latitude, longitude, k=20, radius_m=radius_m))
            by_kind.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        every = [sample for samples in by_kind.values() for sample in samples]
        print(f"nearest {label} (ms), {found / len(queries):.1f} stores found on average:")
        print(f"  all queries   {summary(every)}")
        for kind, samples in sorted(by_kind.items()):
            print(f"  {kind:<13} {summary(samples)}")


if __name__ == "__main__":
    main()
