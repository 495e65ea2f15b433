"""Lifts a marketer can trust, with their 95 % interval (rates and their intervals: domain.rates).

Lift is the treated group's conversion rate over the control group's, minus one; its interval comes from
the log of the rate ratio (Katz), undefined while either group has no conversion.
"""

from __future__ import annotations

import math

import msgspec

from domain.rates import Z_95


class Lift(msgspec.Struct, frozen=True):
    lift: float | None  # +0.25 = 25 % more conversions than control; None while undefined
    low: float | None
    high: float | None


def lift(treated: int, treated_n: int, control: int, control_n: int, z: float = Z_95) -> Lift:
    if min(treated, treated_n, control, control_n) == 0:
        return Lift(None, None, None)
    ratio = (treated / treated_n) / (control / control_n)
    se = math.sqrt(1 / treated - 1 / treated_n + 1 / control - 1 / control_n)
    log_ratio = math.log(ratio)
    return Lift(ratio - 1, math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)
