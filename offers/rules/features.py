"""A decision's context as numbers: one encoding for the app's members and for logged data from elsewhere.

A context is a bag of categorical facts (`lifecycle=active`, `hour=evening`, an OBD user feature's hash)
and numeric facts in [0, 1] (`health`, RFM scores), hashed into a fixed number of slots, so a new fact
needs no schema change and the Open Bandit Dataset's hashed user features fit as they are. Each candidate
adds what is known of it for this member before choosing (`affinity`: the share of their purchases in the
offer's category; an OBD row's user-item affinity) and the slot it would fill (`position`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

HASHED_SLOTS = 24
POSITIONS = 3  # first, second, third and later
DIMENSIONS = 1 + HASHED_SLOTS + POSITIONS + 1  # intercept, hashed facts, position, affinity
_POSITION_AT = 1 + HASHED_SLOTS
_AFFINITY_AT = _POSITION_AT + POSITIONS

Vector = npt.NDArray[np.floating[Any]]


class Context(msgspec.Struct, frozen=True):
    tokens: tuple[str, ...] = ()
    numbers: tuple[tuple[str, float], ...] = ()


class Candidate(msgspec.Struct, frozen=True):
    key: str  # an offer id, or a logged item id
    affinity: float = 0.0  # in [0, 1]
    cost: float = 0.0  # business weight: expected points cost over COST_SCALE_POINTS


def _slot(name: str) -> int:
    return 1 + zlib.crc32(name.encode()) % HASHED_SLOTS


def context_vector(context: Context) -> Vector:
    """The candidate-independent part: intercept and hashed facts."""
    vector = np.zeros(DIMENSIONS)
    vector[0] = 1.0
    for token in context.tokens:
        vector[_slot(token)] += 1.0
    for name, value in context.numbers:
        vector[_slot(name)] += value
    return vector


def feature_matrix(context: Vector, candidates: Sequence[Candidate], position: int) -> Vector:
    """One row per candidate: the context, the position filled (1-based), the candidate's affinity."""
    rows = np.repeat(context[np.newaxis, :], len(candidates), axis=0)
    rows[:, _POSITION_AT + min(position, POSITIONS) - 1] = 1.0
    rows[:, _AFFINITY_AT] = [candidate.affinity for candidate in candidates]
    return rows
