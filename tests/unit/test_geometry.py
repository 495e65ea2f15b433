"""Geodesic distances and fences, against geographiclib (the reference geopy wraps) and worked cases."""

from __future__ import annotations

import math

import msgspec
import pytest
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.geo import (
    MAX_CURVATURE_RADIUS_M,
    MIN_CURVATURE_RADIUS_M,
    CircleFence,
    Point,
    PolygonFence,
    central_angle,
    distance_m,
    distance_to_fence_m,
    point_in_polygon,
    unit_vector,
    validate_polygon,
    within_fence,
)

TOKYO_STATION = (35.681236, 139.767125)
SHIN_OSAKA = (34.733165, 135.500214)
JFK = (40.641311, -73.778139)
LHR = (51.470022, -0.454295)
WGS84 = Geodesic.WGS84


def reference_m(a: Point, b: Point) -> float:
    distance: float = WGS84.Inverse(a[0], a[1], b[0], b[1])["s12"]
    return distance


def moved(start: Point, azimuth_deg: float, metres: float) -> Point:
    """The point `metres` from `start` along the geodesic leaving at `azimuth_deg` (0 = north, 90 = east)."""
    result = WGS84.Direct(start[0], start[1], azimuth_deg, metres)
    return (result["lat2"], result["lon2"])


# distance_m


@pytest.mark.parametrize(
    ("a", "b", "approximately_m"),
    [
        (TOKYO_STATION, SHIN_OSAKA, 402_480),
        (JFK, LHR, 5_554_900),
        (TOKYO_STATION, moved(TOKYO_STATION, 45.0, 100.0), 100),
        ((-17.0, 179.999), (-17.0, -179.999), 213),  # across the antimeridian, the short way
    ],
)
def test_distance_is_the_wgs84_geodesic(a: Point, b: Point, approximately_m: float) -> None:
    assert distance_m(a, b) == pytest.approx(reference_m(a, b), abs=1e-6)
    assert distance_m(a, b) == pytest.approx(approximately_m, rel=1e-3)


def test_distance_is_what_geopy_geodesic_gives() -> None:
    # distance_m reuses one geopy geodesic object for speed; it must measure exactly as a fresh one does.
    assert distance_m(TOKYO_STATION, SHIN_OSAKA) == geodesic(TOKYO_STATION, SHIN_OSAKA).meters
    assert distance_m(JFK, LHR) == geodesic(JFK, LHR).meters


def test_a_degree_of_latitude_is_longer_near_the_pole_than_at_the_equator() -> None:
    # On a sphere both would be the same 111,195 m; the ellipsoid is flatter at the poles.
    assert distance_m((0.0, 0.0), (1.0, 0.0)) == pytest.approx(110_574.4, abs=0.5)
    assert distance_m((89.0, 0.0), (90.0, 0.0)) == pytest.approx(111_693.9, abs=0.5)


coordinates = st.tuples(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)


@settings(max_examples=300, deadline=None)
@given(coordinates, coordinates)
@example((0.0, 0.0), (0.0, 180.0))  # antipodal on the equator: the geodesic goes over a pole
@example((0.0, 0.0), (0.0, 179.5))
@example((90.0, 0.0), (-90.0, 0.0))
@example((0.0, 0.0), (0.001, 0.0))  # north-south at the equator: the smallest radius of curvature
@example((89.999, 0.0), (89.999, 90.0))  # around a pole: the largest
def test_geodesic_lies_between_the_spherical_bounds(a: Point, b: Point) -> None:
    """The bound the nearest-store search relies on for exactness."""
    angle = central_angle(unit_vector(a), unit_vector(b))
    assert MIN_CURVATURE_RADIUS_M * angle - 1e-6 <= distance_m(a, b) <= MAX_CURVATURE_RADIUS_M * angle + 1e-6


# circles

SHOP = CircleFence(center=TOKYO_STATION, radius_m=100)


def test_the_centre_is_inside_with_a_perfect_fix() -> None:
    assert within_fence(SHOP, TOKYO_STATION, accuracy_m=0, allowance_m=50) == (True, 0.0)


def test_a_fix_exactly_at_radius_plus_allowance_counts_and_a_centimetre_more_does_not() -> None:
    at_limit = moved(TOKYO_STATION, 30.0, 150.0)
    inside, distance = within_fence(SHOP, at_limit, accuracy_m=1_000, allowance_m=50)
    assert inside
    assert distance == pytest.approx(50.0, abs=1e-6)
    assert not within_fence(SHOP, moved(TOKYO_STATION, 30.0, 150.01), accuracy_m=1_000, allowance_m=50)[0]


@pytest.mark.parametrize(
    ("accuracy_m", "expected"),
    [
        (20, False),  # 30 m outside, the fix is sure within 20 m: not there
        (35, True),  # the accuracy circle reaches the fence
        (500, True),  # a coarse fix, but 30 m is within the allowance
    ],
)
def test_accuracy_counts_up_to_the_allowance(accuracy_m: float, expected: bool) -> None:
    thirty_outside = moved(TOKYO_STATION, 200.0, 130.0)
    inside, distance = within_fence(SHOP, thirty_outside, accuracy_m=accuracy_m, allowance_m=50)
    assert inside is expected
    assert distance == pytest.approx(30.0, abs=1e-6)


def test_a_coarse_fix_never_counts_beyond_the_allowance() -> None:
    sixty_outside = moved(TOKYO_STATION, 200.0, 160.0)
    assert within_fence(SHOP, sixty_outside, accuracy_m=2_000, allowance_m=50)[0] is False


@pytest.mark.parametrize(("accuracy_m", "allowance_m"), [(-1.0, 50.0), (10.0, -1.0), (math.nan, 50.0)])
def test_negative_or_unknown_accuracy_is_refused(accuracy_m: float, allowance_m: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        within_fence(SHOP, TOKYO_STATION, accuracy_m=accuracy_m, allowance_m=allowance_m)


@pytest.mark.parametrize(("center", "radius_m"), [((91.0, 0.0), 100), ((0.0, 181.0), 100), ((0.0, 0.0), -1)])
def test_invalid_circles_are_refused(center: Point, radius_m: int) -> None:
    with pytest.raises(ValueError, match=r"latitude|longitude|radius_m"):
        CircleFence(center=center, radius_m=radius_m)


def test_fences_decode_from_json() -> None:
    circle = msgspec.json.decode(b'{"center": [35.68, 139.76], "radius_m": 80}', type=CircleFence)
    assert circle == CircleFence(center=(35.68, 139.76), radius_m=80)
    with pytest.raises(msgspec.ValidationError, match="at least 3 vertices"):
        msgspec.json.decode(b'{"vertices": [[35.68, 139.76], [35.69, 139.76]]}', type=PolygonFence)


# polygons

LAT, LON = TOKYO_STATION
STATION = PolygonFence(  # about 200 m x 200 m around Tokyo Station
    vertices=(
        (LAT - 0.0009, LON - 0.0011),
        (LAT - 0.0009, LON + 0.0011),
        (LAT + 0.0009, LON + 0.0011),
        (LAT + 0.0009, LON - 0.0011),
    )
)
FIJI = PolygonFence(  # about 200 m x 200 m astride the antimeridian
    vertices=((-17.0009, 179.99905), (-17.0009, -179.99905), (-16.9991, -179.99905), (-16.9991, 179.99905))
)


def test_inside_a_polygon_is_distance_zero() -> None:
    assert point_in_polygon(STATION.vertices, TOKYO_STATION)
    assert distance_to_fence_m(STATION, TOKYO_STATION) == 0.0


def test_outside_a_polygon_is_the_distance_to_the_nearest_edge() -> None:
    on_east_edge = (LAT + 0.0003, LON + 0.0011)
    fifty_east = moved(on_east_edge, 90.0, 50.0)
    assert not point_in_polygon(STATION.vertices, fifty_east)
    assert distance_to_fence_m(STATION, fifty_east) == pytest.approx(50.0, abs=0.01)


def test_outside_a_corner_is_the_distance_to_the_corner() -> None:
    corner = STATION.vertices[2]
    beyond = moved(corner, 45.0, 70.0)
    assert distance_to_fence_m(STATION, beyond) == pytest.approx(70.0, abs=0.01)


def test_a_metre_inside_an_edge_is_inside() -> None:
    inside = moved((LAT, LON - 0.0011), 90.0, 1.0)
    assert point_in_polygon(STATION.vertices, inside)
    assert within_fence(STATION, inside, accuracy_m=0, allowance_m=0) == (True, 0.0)


def test_a_polygon_fix_counts_within_accuracy_and_allowance() -> None:
    thirty_south = moved((LAT - 0.0009, LON), 180.0, 30.0)
    inside, distance = within_fence(STATION, thirty_south, accuracy_m=50, allowance_m=40)
    assert inside
    assert distance == pytest.approx(30.0, abs=0.01)
    assert not within_fence(STATION, thirty_south, accuracy_m=50, allowance_m=20)[0]


@pytest.mark.parametrize("point", [(-17.0, 180.0), (-17.0, -180.0), (-17.0, 179.9991), (-17.0005, -179.9995)])
def test_points_inside_a_polygon_across_the_antimeridian(point: Point) -> None:
    assert point_in_polygon(FIJI.vertices, point)
    assert distance_to_fence_m(FIJI, point) == 0.0


@pytest.mark.parametrize(
    "point", [(-17.0, 0.0), (-17.0, 179.998), (-17.0, -179.998), (-17.002, 180.0), (17.0, 180.0)]
)
def test_points_outside_a_polygon_across_the_antimeridian(point: Point) -> None:
    assert not point_in_polygon(FIJI.vertices, point)
    assert distance_to_fence_m(FIJI, point) > 0


def test_distance_to_a_polygon_across_the_antimeridian_goes_the_short_way() -> None:
    east_edge = (-17.0, -179.99905)
    hundred_east = moved(east_edge, 90.0, 100.0)
    assert distance_to_fence_m(FIJI, hundred_east) == pytest.approx(100.0, abs=0.01)
    hundred_west = moved((-17.0, 179.99905), 270.0, 100.0)
    assert distance_to_fence_m(FIJI, hundred_west) == pytest.approx(100.0, abs=0.01)


@st.composite
def fence_and_point(draw: st.DrawFn) -> tuple[PolygonFence, Point]:
    """A convex polygon of 3-8 vertices, 30 m to 2 km across, outside the polar caps, and a point near it."""
    lat = draw(st.floats(min_value=-75, max_value=75))
    lon = draw(st.floats(min_value=-180, max_value=180))
    radius_m = draw(st.floats(min_value=30, max_value=2_000))
    sides = draw(st.integers(min_value=3, max_value=8))
    turn = draw(st.floats(min_value=0, max_value=360))
    vertices = tuple(moved((lat, lon), turn + 360.0 * i / sides, radius_m) for i in range(sides))
    point = moved((lat, lon), draw(st.floats(min_value=0, max_value=360)), draw(st.floats(0, 3 * radius_m)))
    return PolygonFence(vertices=vertices), point


def sampled_boundary_m(vertices: tuple[Point, ...], point: Point, samples: int) -> float:
    """Distance to the nearest of `samples` points on each edge (edges straight in longitude/latitude)."""
    best = math.inf
    for (lat1, lon1), (lat2, lon2) in zip(vertices, (*vertices[1:], vertices[0]), strict=True):
        dlon = (lon2 - lon1 + 180.0) % 360.0 - 180.0
        for i in range(samples + 1):
            t = i / samples
            best = min(
                best, distance_m(point, (lat1 + t * (lat2 - lat1), (lon1 + t * dlon + 180.0) % 360.0 - 180.0))
            )
    return best


@settings(max_examples=40, deadline=None)
@given(fence_and_point())
def test_polygon_distance_is_zero_inside_and_the_nearest_boundary_point_outside(
    case: tuple[PolygonFence, Point],
) -> None:
    fence, point = case
    distance = distance_to_fence_m(fence, point)
    if point_in_polygon(fence.vertices, point):
        assert distance == 0.0
    else:  # outside, or exactly on the boundary (0)
        assert distance >= 0.0
        # No sampled boundary point is nearer than the projected one (the approximation is millimetres).
        assert distance <= sampled_boundary_m(fence.vertices, point, samples=40) + 0.01
        assert distance <= min(distance_m(point, vertex) for vertex in fence.vertices) + 0.01


# validate_polygon


def test_validate_polygon_returns_float_tuples_and_drops_a_closing_vertex() -> None:
    ring = [(35, 139), (35, 139.001), (35.001, 139.001), (35, 139)]
    validated = validate_polygon(ring)
    assert validated == ((35.0, 139.0), (35.0, 139.001), (35.001, 139.001))
    assert all(isinstance(value, float) for vertex in validated for value in vertex)


def test_validate_polygon_accepts_a_fence_across_the_antimeridian() -> None:
    assert validate_polygon(FIJI.vertices) == FIJI.vertices


SQUARE = [(LAT, LON), (LAT, LON + 0.001), (LAT + 0.001, LON + 0.001), (LAT + 0.001, LON)]


@pytest.mark.parametrize(
    ("vertices", "message"),
    [
        (SQUARE[:2], "3 to 100 vertices"),
        ([(LAT + i * 1e-5, LON + (i % 2) * 1e-4) for i in range(101)], "3 to 100 vertices"),
        ([*SQUARE[:3], (91.0, LON)], "latitude"),
        ([*SQUARE[:3], (LAT, 180.5)], "longitude"),
        ([*SQUARE[:3], (math.nan, LON)], "finite"),
        ([*SQUARE[:3], (LAT + 0.06, LON)], "more than 5000 m from the first"),
        ([(LAT, LON), (LAT + 0.001, LON + 0.001), (LAT + 0.002, LON + 0.002)], "one line"),
        ([(LAT, LON), (LAT, LON + 1e-6), (LAT + 1e-6, LON + 1e-6), (LAT + 1e-6, LON)], "coincide"),  # 10 cm
        ([(89.99, 0.0), (89.99, 90.0), (89.99, 180.0), (89.99, -90.0)], "around a pole"),
        ([(90.0, 0.0), (89.99, 0.0), (89.99, 1.0)], "on a pole"),
    ],
)
def test_validate_polygon_refuses(vertices: list[Point], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_polygon(vertices)
