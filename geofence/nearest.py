"""Nearest stores to a location, exactly by WGS-84 geodesic distance, from an in-memory index.

The index is a k-d tree over the stores' points on the unit sphere (`geometry.unit_vector`): 3D vectors
have no antimeridian and no poles, so Fiji and Svalbard need no special case, and a tree adapts to
50,000 stores crowded in Tokyo as well as to a few scattered over an ocean. A query walks the tree
best-first by the straight-line (chord) distance to each node's bounding box, which orders points exactly
as the central angle does.

Exactness: the spherical angle only chooses candidates. With θk the k-th smallest angle, every store among
the k geodesically nearest has an angle of at most θk * a³/b³ (`geometry.CURVATURE_RATIO`, about 1.0101,
plus a metre for rounding), because geodesic / angle always lies between the smallest and largest radius of
curvature of the ellipsoid. Those candidates (typically k plus a few) are measured with geopy's geodesic,
sorted by (distance, store_id) and cut to k and to the radius.

Far from every store that 1% margin is wide (100 km at 10,000 km: a whole city of candidates for a member
in Europe when the stores are in Japan), so when the candidates outnumber 2k + 32 the query switches to a
branch and bound on geodesic distances themselves (triangle inequality against node centres, see
`_geodesic_search`): ~150 geodesics instead of thousands.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections.abc import Sequence

import msgspec

from domain.geo import (
    CURVATURE_RATIO,
    MAX_CURVATURE_RADIUS_M,
    MIN_CURVATURE_RADIUS_M,
    ROUNDING_SLACK_RAD,
    Point,
    Vector,
    central_angle,
    distance_m,
    unit_vector,
)

_LEAF_SIZE = 16
_EVERYTHING = 4.0 * (1 + 1e-9)  # squared chord beyond any two points of the unit sphere (diameter 2)


class IndexedStore(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        _check_location(self.latitude, self.longitude)


class Neighbour(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    distance_m: float


def _check_location(latitude: float, longitude: float) -> None:
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):  # also rejects NaN
        raise ValueError(f"invalid coordinates ({latitude}, {longitude})")


def _squared_chord(angle: float) -> float:
    """Squared straight-line distance between two unit vectors `angle` radians apart."""
    if angle >= math.pi:
        return _EVERYTHING
    chord = 2.0 * math.sin(angle / 2.0)
    return chord * chord


def _candidate_limit(squared_chord: float) -> float:
    """Squared chord within which a store may still beat one at `squared_chord` geodesically."""
    angle = 2.0 * math.asin(min(1.0, math.sqrt(squared_chord) / 2.0))
    return _squared_chord(angle * CURVATURE_RATIO + ROUNDING_SLACK_RAD)


class StoreIndex:
    """Immutable nearest-store index; build once from the store list and share (queries do not mutate it)."""

    def __init__(self, stores: Sequence[IndexedStore]) -> None:
        if len({store.store_id for store in stores}) != len(stores):
            raise ValueError("store ids must be unique")
        self._stores = list(stores)
        vectors = [unit_vector((store.latitude, store.longitude)) for store in stores]
        # Tree nodes as parallel lists: bounding box, children (-1 for a leaf), range in the point arrays
        # (which hold the points leaf by leaf), and a centre with a radius in metres covering the node.
        self._box: list[tuple[float, float, float, float, float, float]] = []
        self._left: list[int] = []
        self._right: list[int] = []
        self._start: list[int] = []
        self._end: list[int] = []
        self._centre: list[tuple[Point, Vector]] = []
        self._radius_m: list[float] = []
        self._order = list(range(len(stores)))
        if stores:
            self._build(vectors, 0, len(stores))
        self._xs = [vectors[i][0] for i in self._order]
        self._ys = [vectors[i][1] for i in self._order]
        self._zs = [vectors[i][2] for i in self._order]
        # For each point, an upper bound of its geodesic distance to its leaf's centre.
        self._offset_m = [0.0] * len(stores)
        for node, left in enumerate(self._left):
            if left < 0:
                centre = self._centre[node][1]
                for i in range(self._start[node], self._end[node]):
                    self._offset_m[i] = _metres_at_most(central_angle(centre, vectors[self._order[i]]))

    def _build(self, vectors: list[Vector], start: int, end: int) -> int:
        """Add the subtree over self._order[start:end] (reordered in place) and return its node number."""
        node = len(self._box)
        order = self._order
        columns = [[vectors[i][axis] for i in order[start:end]] for axis in range(3)]
        lows = [min(column) for column in columns]
        highs = [max(column) for column in columns]
        self._box.append((lows[0], highs[0], lows[1], highs[1], lows[2], highs[2]))
        centre = _centre_of_box(lows, highs)
        self._centre.append(centre)
        self._radius_m.append(_metres_at_most(_widest_angle(centre[1], lows, highs)))
        self._left.append(-1)
        self._right.append(-1)
        self._start.append(start)
        self._end.append(end)
        if end - start > _LEAF_SIZE:
            axis = max(range(3), key=lambda a: highs[a] - lows[a])
            order[start:end] = sorted(order[start:end], key=lambda i: vectors[i][axis])
            middle = (start + end) // 2
            self._left[node] = self._build(vectors, start, middle)
            self._right[node] = self._build(vectors, middle, end)
        return node

    def __len__(self) -> int:
        return len(self._stores)

    def nearest(
        self, latitude: float, longitude: float, k: int, radius_m: float | None = None
    ) -> list[Neighbour]:
        """The k stores nearest to the point by geodesic distance, nearest first, ties by store_id.

        With `radius_m`, only stores at most that far. Distances are `distance_m(query, store)`.
        """
        _check_location(latitude, longitude)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if radius_m is not None and not radius_m >= 0:
            raise ValueError(f"radius_m must be a non-negative number, got {radius_m}")
        if not self._stores:
            return []
        query = (latitude, longitude)
        limit = _EVERYTHING
        if radius_m is not None:
            # geodesic >= MIN_CURVATURE_RADIUS_M * angle, so farther angles are beyond the radius.
            limit = _squared_chord(radius_m / MIN_CURVATURE_RADIUS_M + ROUNDING_SLACK_RAD)
        candidates = self._spherical_candidates(unit_vector(query), k, limit, budget=2 * k + 32)
        if candidates is None:
            measured = self._geodesic_search(query, k, radius_m)
        else:
            measured = [
                (distance_m(query, self._location(i)), self._stores[self._order[i]].store_id)
                for i in candidates
            ]
        if radius_m is not None:
            measured = [pair for pair in measured if pair[0] <= radius_m]
        measured.sort()
        return [Neighbour(store_id=store_id, distance_m=distance) for distance, store_id in measured[:k]]

    def _location(self, i: int) -> Point:
        store = self._stores[self._order[i]]
        return (store.latitude, store.longitude)

    def _spherical_candidates(self, query: Vector, k: int, limit: float, budget: int) -> list[int] | None:
        """Points that can be among the k geodesically nearest within squared chord `limit`.

        None when there are more than `budget`: far from every store, the ~1% margin of the spherical
        bound spans whole cities (100 km at 10,000 km), and `_geodesic_search` is then much cheaper.
        """
        qx, qy, qz = query
        xs, ys, zs = self._xs, self._ys, self._zs
        boxes, lefts, rights = self._box, self._left, self._right
        found: list[tuple[float, int]] = []
        best: list[float] = []  # the k smallest squared chords so far, negated (a max-heap)
        pending: list[tuple[float, int]] = [(0.0, 0)]  # (squared chord to the node's box, node)
        while pending:
            reach, node = heapq.heappop(pending)
            if reach > limit:
                break
            left = lefts[node]
            if left >= 0:
                for child in (left, rights[node]):
                    child_reach = _squared_chord_to_box(qx, qy, qz, boxes[child])
                    if child_reach <= limit:
                        heapq.heappush(pending, (child_reach, child))
                continue
            for i in range(self._start[node], self._end[node]):
                dx, dy, dz = xs[i] - qx, ys[i] - qy, zs[i] - qz
                squared = dx * dx + dy * dy + dz * dz
                if squared > limit:
                    continue
                found.append((squared, i))
                if len(best) < k:
                    heapq.heappush(best, -squared)
                elif squared < -best[0]:
                    heapq.heapreplace(best, -squared)
                else:
                    continue
                if len(best) == k:
                    limit = min(limit, _candidate_limit(-best[0]))
            if len(found) > 2 * budget:
                found = [pair for pair in found if pair[0] <= limit]
                if len(found) > budget:
                    return None
        return [i for squared, i in found if squared <= limit]

    def _geodesic_search(self, query: Point, k: int, radius_m: float | None) -> list[tuple[float, uuid.UUID]]:
        """The k nearest within the radius by branch and bound on geodesic distance (a metric tree).

        A node's lower bound is the better of the spherical one and, once its centre has been measured,
        distance to the centre minus the node's radius (triangle inequality on the ellipsoid); a point's is
        distance to its leaf's centre minus its offset. Only points whose bound does not exceed the k-th
        best distance so far are measured. Costs ~50-150 geodesics, whatever the density of the far city.
        """
        qx, qy, qz = unit_vector(query)
        bound = math.inf if radius_m is None else radius_m
        kept: list[tuple[float, int, int]] = []  # (-distance, -store id, point): the worst on top
        pending: list[tuple[float, bool, int, float]] = [
            (0.0, False, 0, 0.0)
        ]  # (lower bound, refined, node, d)
        while pending:
            lower, refined, node, centre_distance = heapq.heappop(pending)
            if lower > bound:
                break
            if not refined:  # measure the centre only now: most nodes pushed are never reached
                centre_distance = distance_m(query, self._centre[node][0])
                lower = max(lower, centre_distance - self._radius_m[node])
                if lower <= bound:
                    heapq.heappush(pending, (lower, True, node, centre_distance))
                continue
            left = self._left[node]
            if left >= 0:
                for child in (left, self._right[node]):
                    reach = _squared_chord_to_box(qx, qy, qz, self._box[child])
                    child_lower = _metres_at_least(2.0 * math.asin(min(1.0, math.sqrt(reach) / 2.0)))
                    if child_lower <= bound:
                        heapq.heappush(pending, (child_lower, False, child, 0.0))
                continue
            for i in range(self._start[node], self._end[node]):
                if centre_distance - self._offset_m[i] > bound:
                    continue
                distance = distance_m(query, self._location(i))
                if distance > bound:
                    continue
                store_id = self._stores[self._order[i]].store_id
                heapq.heappush(kept, (-distance, -store_id.int, i))
                if len(kept) > k:
                    heapq.heappop(kept)
                if len(kept) == k:
                    bound = min(bound, -kept[0][0])
        return [(-distance, self._stores[self._order[i]].store_id) for distance, _, i in kept]


def _squared_chord_to_box(qx: float, qy: float, qz: float, box: tuple[float, ...]) -> float:
    """Squared distance from the query vector to the nearest point of an axis-aligned box."""
    x0, x1, y0, y1, z0, z1 = box
    dx = x0 - qx if qx < x0 else (qx - x1 if qx > x1 else 0.0)
    dy = y0 - qy if qy < y0 else (qy - y1 if qy > y1 else 0.0)
    dz = z0 - qz if qz < z0 else (qz - z1 if qz > z1 else 0.0)
    return dx * dx + dy * dy + dz * dz


def _metres_at_most(angle: float) -> float:
    """An upper bound of the geodesic between two points `angle` radians apart on the unit sphere."""
    return MAX_CURVATURE_RADIUS_M * angle + 1.0  # a metre covers rounding


def _metres_at_least(angle: float) -> float:
    """A lower bound of the geodesic between two points `angle` radians apart on the unit sphere."""
    return MIN_CURVATURE_RADIUS_M * angle - 1.0


def _centre_of_box(lows: list[float], highs: list[float]) -> tuple[Point, Vector]:
    """A point on the sphere near the box's centre, as coordinates and as the matching unit vector."""
    x, y, z = ((low + high) / 2.0 for low, high in zip(lows, highs, strict=True))
    if x * x + y * y + z * z < 1e-12:  # a box around the whole sphere: any centre will do
        x, y, z = 0.0, 0.0, 1.0
    centre = (math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x)))
    return centre, unit_vector(centre)


def _widest_angle(centre: Vector, lows: list[float], highs: list[float]) -> float:
    """An upper bound of the angle from `centre` to any unit vector in the box.

    Distance from a point is convex, so over the box it is largest at a corner.
    """
    farthest = 0.0
    for x in (lows[0], highs[0]):
        for y in (lows[1], highs[1]):
            for z in (lows[2], highs[2]):
                farthest = max(farthest, (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    return 2.0 * math.asin(min(1.0, math.sqrt(farthest) / 2.0))
