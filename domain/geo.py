"""Distances and fences on the WGS-84 ellipsoid: pure functions of coordinates, no I/O.

Shared by stores (validating a fence when it is saved) and geofence (judging a check-in against it).

Every distance is geopy's geodesic on the WGS-84 ellipsoid (Karney's algorithm, exact to nanometres), never
flat-earth or spherical maths: one degree of longitude shrinks with latitude and the earth is not a sphere,
and a check-in radius of 100 m must mean 100 m in Sapporo as in Naha.

Cheaper spherical angles are only used to decide *which* geodesic distances to compute, through a proven
bound (`MIN_CURVATURE_RADIUS_M`, `MAX_CURVATURE_RADIUS_M`), so results never depend on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import msgspec
from geopy.distance import geodesic

Point = tuple[float, float]  # (latitude, longitude) in degrees, WGS-84
Vector = tuple[float, float, float]  # a point on the unit sphere

WGS84_A_M = 6_378_137.0  # semi-major axis
WGS84_F = 1 / 298.257223563  # flattening
_WGS84_B_M = WGS84_A_M * (1 - WGS84_F)
_WGS84_E2 = WGS84_F * (2 - WGS84_F)  # first eccentricity squared

# Place a point on the unit sphere at its geodetic latitude and longitude (`unit_vector`). The ellipsoid's
# line element is sqrt(M² dφ² + N² cos²φ dλ²) and the unit sphere's sqrt(dφ² + cos²φ dλ²), where the
# radii of curvature M (meridian) and N (prime vertical) both lie between b²/a (M at the equator) and a²/b
# (both at the poles). Comparing the length of each curve's image on the other surface gives, for any two
# points with central angle θ on the unit sphere:  MIN_CURVATURE_RADIUS_M * θ <= geodesic <= MAX * θ.
# The two differ by ~1.01 (a³/b³), which is the margin the nearest-store search and the fence distance use.
MIN_CURVATURE_RADIUS_M = _WGS84_B_M**2 / WGS84_A_M  # 6,335,439 m
MAX_CURVATURE_RADIUS_M = WGS84_A_M**2 / _WGS84_B_M  # 6,399,594 m
CURVATURE_RATIO = MAX_CURVATURE_RADIUS_M / MIN_CURVATURE_RADIUS_M
# Added to bounds to cover floating-point rounding (nanometres in practice) with a wide margin.
ROUNDING_SLACK_RAD = 1.0 / MIN_CURVATURE_RADIUS_M  # one metre

MAX_POLYGON_VERTICES = 100
MAX_POLYGON_EXTENT_M = 5_000.0  # every vertex within this of the first: fences are for malls and stations
MIN_POLYGON_WIDTH_M = 1.0  # thinner than this everywhere, a polygon is a line, not an area
_FLOAT_TOLERANCE_M = 0.001  # a fix computed "exactly" on a limit may come out a few nanometres beyond it

# geopy builds a new geographiclib Geodesic (coefficient tables) for each geodesic() object, about half the
# cost of a distance; one instance reused measures exactly the same way, in kilometres.
_WGS84 = geodesic()


def distance_m(a: Point, b: Point) -> float:
    """Geodesic distance in metres between two points on the WGS-84 ellipsoid."""
    kilometres: float = _WGS84.measure(a, b)
    return kilometres * 1000.0


def unit_vector(point: Point) -> Vector:
    """The point on the unit sphere at the same geodetic latitude and longitude (see the bounds above)."""
    phi = math.radians(point[0])
    lam = math.radians(point[1])
    cos_phi = math.cos(phi)
    return (cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi))


def central_angle(u: Vector, v: Vector) -> float:
    """Angle in radians between two unit vectors; stable for tiny and near-antipodal angles alike."""
    cx = u[1] * v[2] - u[2] * v[1]
    cy = u[2] * v[0] - u[0] * v[2]
    cz = u[0] * v[1] - u[1] * v[0]
    return math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), u[0] * v[0] + u[1] * v[1] + u[2] * v[2])


def _check_coordinates(point: Point) -> None:
    latitude, longitude = point
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise ValueError(f"coordinates must be finite numbers, got {point}")
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude must be within [-90, 90], got {latitude}")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude must be within [-180, 180], got {longitude}")


class CircleFence(msgspec.Struct, frozen=True):
    """A store's check-in area as a circle: enough for a shop on a street."""

    center: Point
    radius_m: int

    def __post_init__(self) -> None:
        _check_coordinates(self.center)
        if self.radius_m < 0:
            raise ValueError(f"radius_m cannot be negative, got {self.radius_m}")


class PolygonFence(msgspec.Struct, frozen=True):
    """A check-in area as a polygon (implicitly closed), for a store inside a mall or a station.

    Construction checks only what the geometry needs (3 vertices, valid coordinates), so a fence stored
    under older rules still loads; `validate_polygon` applies the current rules when a fence is saved.
    """

    vertices: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise ValueError(f"a polygon needs at least 3 vertices, got {len(self.vertices)}")
        for vertex in self.vertices:
            _check_coordinates(vertex)


Fence = CircleFence | PolygonFence


def _wrap_degrees(delta: float) -> float:
    """A longitude difference brought into [-180, 180): the short way round."""
    return (delta + 180.0) % 360.0 - 180.0


def _unwrapped_ring(vertices: Sequence[Point], longitude: float) -> list[Point]:
    """The closed ring with continuous longitudes, placed within 180 degrees of `longitude` (the point's).

    The first vertex is unwrapped relative to `longitude` and every next one relative to its predecessor,
    so each edge goes the short way round, also across the antimeridian. The ring ends with the first
    vertex again (360 degrees off for a ring around a pole, which `validate_polygon` rejects).
    """
    ring: list[Point] = []
    previous = longitude
    for latitude, vertex_longitude in (*vertices, vertices[0]):
        previous += _wrap_degrees(vertex_longitude - previous)
        ring.append((latitude, previous))
    return ring


def point_in_polygon(vertices: Sequence[Point], point: Point) -> bool:
    """Whether the point is inside the polygon, by ray casting along the parallel in unwrapped longitudes.

    Edges are straight lines in (longitude, latitude): for fences of a few km this is the same area as
    great-circle edges to within about a metre. A point exactly on the boundary may fall either way.
    """
    latitude, longitude = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in pairwise(_unwrapped_ring(vertices, longitude)):
        if (lat1 > latitude) != (lat2 > latitude):
            crossing = lon1 + (latitude - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if longitude < crossing:
                inside = not inside
    return inside


def _metres_per_degree(latitude: float) -> tuple[float, float]:
    """Scale of the local tangent plane at a latitude: metres per degree of (longitude, latitude)."""
    phi = math.radians(latitude)
    w = math.sqrt(1.0 - _WGS84_E2 * math.sin(phi) ** 2)
    prime_vertical = WGS84_A_M / w
    meridian = WGS84_A_M * (1.0 - _WGS84_E2) / w**3
    return math.radians(prime_vertical * math.cos(phi)), math.radians(meridian)


def _boundary_distance_m(vertices: Sequence[Point], point: Point) -> float:
    """Geodesic distance from the point to the nearest point of the polygon's boundary.

    Each edge is projected on a local tangent plane centred on the point (east/north metres, an affine map
    of longitude/latitude, so edges stay the same straight lines `point_in_polygon` uses); the foot of the
    perpendicular, clamped to the edge, is mapped back to coordinates and measured geodesically. The plane's
    scale is the point's, so the foot can be slightly off the true nearest point for far or large fences;
    as distance is stationary at the foot, the error is second order: centimetres for fences of a few km.
    Meant for such fences, not for areas of hundreds of km.
    """
    latitude, longitude = point
    kx, ky = _metres_per_degree(latitude)
    feet: list[Point] = []
    for (lat1, lon1), (lat2, lon2) in pairwise(_unwrapped_ring(vertices, longitude)):
        ax, ay = (lon1 - longitude) * kx, (lat1 - latitude) * ky
        dx, dy = (lon2 - lon1) * kx, (lat2 - lat1) * ky
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0.0 else min(1.0, max(0.0, -(ax * dx + ay * dy) / length2))
        feet.append((lat1 + t * (lat2 - lat1), _wrap_degrees(lon1 + t * (lon2 - lon1))))
    # Only feet whose spherical angle is within the curvature ratio of the smallest can be geodesically
    # nearest (see the bounds at the top), so most edges of a large polygon cost no geodesic at all.
    origin = unit_vector(point)
    angles = [central_angle(origin, unit_vector(foot)) for foot in feet]
    limit = min(angles) * CURVATURE_RATIO + ROUNDING_SLACK_RAD
    return min(distance_m(point, foot) for foot, angle in zip(feet, angles, strict=True) if angle <= limit)


def distance_to_fence_m(fence: Fence, point: Point) -> float:
    """How far outside the fence the point is, in metres: 0 inside."""
    if isinstance(fence, CircleFence):
        return max(0.0, distance_m(fence.center, point) - fence.radius_m)
    if point_in_polygon(fence.vertices, point):
        return 0.0
    return _boundary_distance_m(fence.vertices, point)


def within_fence(fence: Fence, point: Point, accuracy_m: float, allowance_m: float) -> tuple[bool, float]:
    """(inside, distance_to_fence_m): does a location fix count as being at the fence?

    A fix whose accuracy circle reaches the fence counts, since the member may well be inside; but never
    more than `allowance_m` outside it, so a coarse fix (a cell tower's 2 km) cannot check in from afar.
    A fix exactly on the limit counts (within a millimetre, to absorb floating-point rounding).
    """
    for name, value in (("accuracy_m", accuracy_m), ("allowance_m", allowance_m)):
        if math.isnan(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value}")
    distance = distance_to_fence_m(fence, point)
    return distance <= min(accuracy_m, allowance_m) + _FLOAT_TOLERANCE_M, distance


def validate_polygon(vertices: Sequence[Point]) -> tuple[Point, ...]:
    """The vertices of a fence a marketer may save, or ValueError saying why not.

    3 to 100 vertices with valid coordinates (a closing vertex equal to the first, as GeoJSON writes rings,
    is dropped), all within 5 km of the first (fences are for malls and stations), not all on one line and
    not around or on a pole.
    """
    points = tuple((float(latitude), float(longitude)) for latitude, longitude in vertices)
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if not 3 <= len(points) <= MAX_POLYGON_VERTICES:
        raise ValueError(f"a polygon needs 3 to {MAX_POLYGON_VERTICES} vertices, got {len(points)}")
    for vertex in points:
        _check_coordinates(vertex)
    first = points[0]
    for vertex in points[1:]:
        if distance_m(first, vertex) > MAX_POLYGON_EXTENT_M:
            raise ValueError(f"vertex {vertex} is more than {MAX_POLYGON_EXTENT_M:.0f} m from the first")
    if any(abs(latitude) == 90.0 for latitude, _ in points):
        raise ValueError("a polygon cannot have a vertex on a pole")
    ring = _unwrapped_ring(points, first[1])
    if abs(ring[-1][1] - ring[0][1]) > 180.0:  # the ring came back 360 degrees off
        raise ValueError("a polygon cannot go around a pole")
    _check_not_collinear(ring[:-1])
    return points


def _check_not_collinear(ring: Sequence[Point]) -> None:
    """ValueError unless some vertex is at least MIN_POLYGON_WIDTH_M off the line through the others."""
    origin_latitude, origin_longitude = ring[0]
    kx, ky = _metres_per_degree(origin_latitude)
    plane = [((lon - origin_longitude) * kx, (lat - origin_latitude) * ky) for lat, lon in ring]
    far_x, far_y = max(plane, key=lambda xy: xy[0] ** 2 + xy[1] ** 2)
    far = math.hypot(far_x, far_y)
    if far < MIN_POLYGON_WIDTH_M:
        raise ValueError("the polygon's vertices all coincide")
    width = max(abs(far_x * y - far_y * x) / far for x, y in plane)
    if width < MIN_POLYGON_WIDTH_M:
        raise ValueError("the polygon's vertices are all on one line")
