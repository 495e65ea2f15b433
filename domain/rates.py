"""A rate a marketer can trust: with its 95 % Wilson score interval (right at 0 and 1, unlike the normal
approximation)."""

from __future__ import annotations

import math

import msgspec

Z_95 = 1.959963984540054


class Rate(msgspec.Struct, frozen=True):
    rate: float | None  # None when nobody was counted
    low: float | None
    high: float | None


def wilson(successes: int, trials: int, z: float = Z_95) -> Rate:
    if not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return Rate(None, None, None)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, without rounding residue
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Rate(p, low, high)
