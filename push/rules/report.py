"""Rates and lifts a marketer can trust: each with its 95 % interval.

A rate's interval is Wilson's score interval (right at 0 and 1, unlike the normal approximation). Lift
is the treated group's conversion rate over the control group's, minus one; its interval comes from the
log of the rate ratio (Katz), undefined while either group has no conversion.
"""

from __future__ import annotations

import math

import msgspec

Z_95 = 1.959963984540054


class Rate(msgspec.Struct, frozen=True):
    rate: float | None  # None when nobody was counted
    low: float | None
    high: float | None


class Lift(msgspec.Struct, frozen=True):
    lift: float | None  # +0.25 = 25 % more conversions than control; None while undefined
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


def lift(treated: int, treated_n: int, control: int, control_n: int, z: float = Z_95) -> Lift:
    if min(treated, treated_n, control, control_n) == 0:
        return Lift(None, None, None)
    ratio = (treated / treated_n) / (control / control_n)
    se = math.sqrt(1 / treated - 1 / treated_n + 1 / control - 1 / control_n)
    log_ratio = math.log(ratio)
    return Lift(ratio - 1, math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)
