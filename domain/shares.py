"""Sharing a whole number of units out in proportion to weights, without losing or inventing a unit."""

from __future__ import annotations

from collections.abc import Sequence


def split_by_weights(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, in whole units that add up exactly to `total`.

    Each share is the difference of cumulative floors, so none exceeds its exact proportion by a unit
    and nothing is lost to rounding. All-zero weights can only share a zero total.
    """
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError(f"cannot share {total} over weights that are all zero")
        return [0] * len(weights)
    shares = []
    cumulative = 0
    previous = 0
    for weight in weights:
        cumulative += weight
        upto = total * cumulative // whole
        shares.append(upto - previous)
        previous = upto
    return shares
