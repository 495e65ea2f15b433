"""The nearest-store index against brute force: every store measured with the same geodesic."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.geo import Point, distance_m
from geofence.nearest import IndexedStore, Neighbour, StoreIndex


def a_store(
    latitude: float, longitude: float, number: int | None = None, rng: random.Random | None = None
) -> IndexedStore:
    """A store with a given id number (to order ties) or a random one."""
    if number is None:
        number = (rng or random.Random()).getrandbits(122)
    return IndexedStore(store_id=uuid.UUID(int=number), latitude=latitude, longitude=longitude)


def brute_force(stores: Sequence[IndexedStore], query: Point) -> list[Neighbour]:
    """Every store by (distance, id): what the index must agree with, float for float."""
    measured = sorted((distance_m(query, (s.latitude, s.longitude)), s.store_id) for s in stores)
    return [Neighbour(store_id=store_id, distance_m=distance) for distance, store_id in measured]


def expected(ranked: list[Neighbour], k: int, radius_m: float | None) -> list[Neighbour]:
    return [n for n in ranked if radius_m is None or n.distance_m <= radius_m][:k]


def wrap(longitude: float) -> float:
    return (longitude + 180.0) % 360.0 - 180.0


Draw = Callable[[random.Random], Point]
DISTRIBUTIONS: dict[str, Draw] = {
    # uniform over the sphere's area, not over latitude
    "world": lambda r: (math.degrees(math.asin(r.uniform(-1, 1))), r.uniform(-180, 180)),
    "tokyo": lambda r: (r.gauss(35.68, 0.08), r.gauss(139.76, 0.1)),
    "fiji_antimeridian": lambda r: (r.gauss(-17.0, 0.2), wrap(179.9 + r.gauss(0, 0.25))),
    "north_pole": lambda r: (r.uniform(85.0, 89.9), r.uniform(-180, 180)),
}


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_nearest_agrees_with_brute_force(distribution: str) -> None:
    rng = random.Random(f"nearest-{distribution}")
    draw = DISTRIBUTIONS[distribution]
    stores = [a_store(*draw(rng), rng=rng) for _ in range(3_000)]
    index = StoreIndex(stores)
    assert len(index) == 3_000
    queries = [draw(rng) for _ in range(4)] + [DISTRIBUTIONS["world"](rng) for _ in range(2)]
    for query in queries:
        ranked = brute_force(stores, query)
        for k in (1, 20, 150):
            for radius_m in (None, 5_000.0, 100_000.0):
                assert index.nearest(*query, k=k, radius_m=radius_m) == expected(ranked, k, radius_m), (
                    query,
                    k,
                )


@pytest.mark.parametrize("query", [(48.8566, 2.3522), (-34.6037, -58.3816), (-90.0, 0.0), (-35.68, -40.24)])
def test_far_from_a_dense_city_is_exact(query: Point) -> None:
    """Seen from another continent, a city's stores are all within the ~1% spherical margin of each other."""
    rng = random.Random(7)
    stores = [a_store(rng.gauss(35.68, 0.15), rng.gauss(139.76, 0.2), rng=rng) for _ in range(3_000)]
    index = StoreIndex(stores)
    ranked = brute_force(stores, query)
    for k in (1, 20, 100):
        assert index.nearest(*query, k=k) == ranked[:k]


@pytest.mark.parametrize("query", [(90.0, 0.0), (90.0, 123.0), (-90.0, 0.0), (-16.9, 180.0), (-16.9, -180.0)])
def test_queries_at_the_poles_and_on_the_antimeridian(query: Point) -> None:
    rng = random.Random(11)
    stores = [a_store(*DISTRIBUTIONS[name](rng), rng=rng) for name in DISTRIBUTIONS for _ in range(300)]
    index = StoreIndex(stores)
    ranked = brute_force(stores, query)
    for k in (1, 20):
        for radius_m in (None, 50_000.0):
            assert index.nearest(*query, k=k, radius_m=radius_m) == expected(ranked, k, radius_m)


def test_geodesic_order_wins_over_spherical_order() -> None:
    # At the equator a degree north is shorter than a degree east (110.6 km vs 111.3 km): on a sphere
    # the store to the east would be nearer.
    north = a_store(10_000 / 6_335_439 * 180 / math.pi, 0.0, number=1)  # ~10,000 m
    east = a_store(0.0, 10_050 / 6_378_137 * 180 / math.pi, number=2)  # ~10,050 m
    index = StoreIndex([east, north])
    assert [n.store_id for n in index.nearest(0.0, 0.0, k=2)] == [north.store_id, east.store_id]
    assert index.nearest(0.0, 0.0, k=1)[0].distance_m == pytest.approx(10_000, abs=1)


def test_the_nearest_store_on_the_other_side_of_the_planet() -> None:
    stores = [a_store(35.68 + i * 0.01, 139.76, number=i) for i in range(3)]
    index = StoreIndex(stores)
    antipode = (-35.69, -40.24)
    assert index.nearest(*antipode, k=2) == brute_force(stores, antipode)[:2]


def test_k_larger_than_the_store_count_returns_every_store_nearest_first() -> None:
    rng = random.Random(3)
    stores = [a_store(*DISTRIBUTIONS["world"](rng), rng=rng) for _ in range(40)]
    assert StoreIndex(stores).nearest(35.0, 139.0, k=1_000) == brute_force(stores, (35.0, 139.0))


def test_an_empty_index_finds_nothing() -> None:
    index = StoreIndex([])
    assert len(index) == 0
    assert index.nearest(35.0, 139.0, k=5) == []
    assert index.nearest(35.0, 139.0, k=5, radius_m=1_000) == []


def test_stores_at_the_same_place_are_ordered_by_store_id() -> None:
    mall = [a_store(35.6595, 139.7005, number=n) for n in (9, 3, 7, 1, 5, 8, 2)]
    elsewhere = [a_store(35.66, 139.70 + i * 0.001, number=100 + i) for i in range(20)]
    index = StoreIndex(mall + elsewhere)
    found = index.nearest(35.6596, 139.7006, k=4)
    assert [n.store_id.int for n in found] == [1, 2, 3, 5]
    assert len({n.distance_m for n in found}) == 1


def test_a_zero_radius_finds_only_a_store_exactly_there() -> None:
    index = StoreIndex([a_store(35.0, 139.0, number=1), a_store(35.0, 139.00001, number=2)])
    assert index.nearest(35.0, 139.0, k=5, radius_m=0) == [
        Neighbour(store_id=uuid.UUID(int=1), distance_m=0.0)
    ]


def test_the_radius_is_inclusive() -> None:
    store = a_store(35.01, 139.0, number=1)
    exact = distance_m((35.0, 139.0), (35.01, 139.0))
    index = StoreIndex([store])
    assert len(index.nearest(35.0, 139.0, k=1, radius_m=exact)) == 1
    assert index.nearest(35.0, 139.0, k=1, radius_m=math.nextafter(exact, 0)) == []


@pytest.mark.parametrize(
    ("latitude", "longitude", "k", "radius_m", "message"),
    [
        (91.0, 0.0, 1, None, "coordinates"),
        (math.nan, 0.0, 1, None, "coordinates"),
        (0.0, 180.5, 1, None, "coordinates"),
        (0.0, 0.0, 0, None, "k must be"),
        (0.0, 0.0, 1, -1.0, "radius_m"),
        (0.0, 0.0, 1, math.nan, "radius_m"),
    ],
)
def test_invalid_queries_are_refused(
    latitude: float, longitude: float, k: int, radius_m: float | None, message: str
) -> None:
    index = StoreIndex([a_store(0.0, 0.0, number=1)])
    with pytest.raises(ValueError, match=message):
        index.nearest(latitude, longitude, k=k, radius_m=radius_m)


def test_duplicate_store_ids_and_invalid_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        StoreIndex([a_store(0.0, 0.0, number=1), a_store(1.0, 1.0, number=1)])
    with pytest.raises(ValueError, match="coordinates"):
        a_store(-90.5, 0.0, number=1)


@st.composite
def stores_and_query(draw: st.DrawFn) -> tuple[list[IndexedStore], Point]:
    """Up to 60 stores around a random centre, spread from metres to a hemisphere, some on the same spot."""
    centre_lat = draw(st.floats(min_value=-90, max_value=90))
    centre_lon = draw(st.floats(min_value=-180, max_value=180))
    spread = draw(st.sampled_from([0.0, 1e-4, 0.01, 1.0, 30.0, 90.0]))
    offsets = st.floats(min_value=-1, max_value=1)
    points = draw(st.lists(st.tuples(offsets, offsets), min_size=0, max_size=60))
    stores = [
        a_store(max(-90.0, min(90.0, centre_lat + dy * spread)), wrap(centre_lon + dx * spread), number=n)
        for n, (dy, dx) in enumerate(points)
    ]
    query = (
        max(-90.0, min(90.0, centre_lat + draw(offsets) * spread * 2)),
        wrap(centre_lon + draw(offsets) * spread * 2),
    )
    return stores, query


@settings(max_examples=150, deadline=None)
@given(
    stores_and_query(),
    st.integers(min_value=1, max_value=70),
    st.sampled_from([None, 0.0, 10.0, 5_000.0, 2e6]),
)
def test_nearest_agrees_with_brute_force_on_any_layout(
    case: tuple[list[IndexedStore], Point], k: int, radius_m: float | None
) -> None:
    stores, query = case
    assert StoreIndex(stores).nearest(*query, k=k, radius_m=radius_m) == expected(
        brute_force(stores, query), k, radius_m
    )
