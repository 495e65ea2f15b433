"""The selection policy: a linear contextual bandit whose choices have exact, logged probabilities.

**Model.** Each offer has a ridge regression of its reward (clipped within the reward window) on the
features of the decisions that showed it, shrunk towards a pooled regression over every offer:
`theta_a = (lambda I + X_a'X_a)^-1 (lambda theta_0 + X_a'r_a)`. An offer nobody has seen yet scores as
the average offer (`theta_0`) with a wide uncertainty; a member nobody knows yet has the features of a
new member (the intercept and `lifecycle=new`). The model is sums (`A`, `b`), so learning from a batch
of rewards is adding it, and a rebuild from the whole log gives the same model.

**Score** of a candidate offer for this context and slot (business weight included):
`mean + ucb * width - cost_weight * cost`, where `mean` is the predicted reward, `width` the predicted
reward's standard-error-like width `sqrt(x' A_a^-1 x)` (optimism for what is little known), and `cost`
the offer's expected points cost over COST_SCALE_POINTS.

**Probabilities** over the K candidates: a softmax of the scores at `temperature`, mixed with the uniform
distribution: `p = gamma / K + (1 - gamma) softmax`, `gamma = max(exploration, K * min_probability)`.
So every candidate has at least `min_probability`, the probabilities are a closed form of the model and
the context (the same on every call, nothing is sampled to estimate them), and the draw uses them.
A list of several offers is drawn slot by slot without replacement; each slot logs the probability of its
offer among the candidates left for that slot.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from offers.rules.features import DIMENSIONS, Candidate, Vector, feature_matrix

COST_SCALE_POINTS = 1_000
Matrix = npt.NDArray[np.floating[Any]]


class PolicyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ridge: Annotated[float, msgspec.Meta(gt=0, le=1_000)] = 1.0
    ucb: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.1
    temperature: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.05
    exploration: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    min_probability: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.001
    cost_weight: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.02

    @property
    def max_candidates(self) -> int:
        """More candidates than this could not each keep `min_probability`."""
        return int(1 / self.min_probability + 1e-9)


class Observation(msgspec.Struct, frozen=True):
    key: str
    features: Vector
    reward: float


class _Sums(msgspec.Struct):
    a: Matrix
    b: Vector
    n: int = 0


def _empty() -> _Sums:
    return _Sums(np.zeros((DIMENSIONS, DIMENSIONS)), np.zeros(DIMENSIONS))


class LinearModel:
    """What has been learned: per-offer and pooled sums of `x x'` and `r x` (without the ridge term)."""

    def __init__(self, pooled: _Sums | None = None, arms: dict[str, _Sums] | None = None) -> None:
        self.pooled = pooled or _empty()
        self.arms = arms or {}

    @property
    def observations(self) -> int:
        return self.pooled.n

    def learned(self, observations: Iterable[Observation]) -> LinearModel:
        """A new model with these rewards added (this one is left as it was: it may be serving)."""
        pooled = _Sums(self.pooled.a.copy(), self.pooled.b.copy(), self.pooled.n)
        arms = dict(self.arms)
        grouped: dict[str, list[Observation]] = defaultdict(list)
        for observation in observations:
            grouped[observation.key].append(observation)
        for key, group in grouped.items():
            x = np.array([observation.features for observation in group])
            r = np.array([observation.reward for observation in group])
            outer, weighted = x.T @ x, x.T @ r
            old = arms.get(key) or _empty()
            arms[key] = _Sums(old.a + outer, old.b + weighted, old.n + len(group))
            pooled.a += outer
            pooled.b += weighted
            pooled.n += len(group)
        return LinearModel(pooled, arms)

    def to_bytes(self) -> bytes:
        keys = sorted(self.arms)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            pooled_a=self.pooled.a,
            pooled_b=self.pooled.b,
            pooled_n=np.array(self.pooled.n),
            keys=np.array(keys, dtype=str),
            a=np.array([self.arms[key].a for key in keys]).reshape(-1, DIMENSIONS, DIMENSIONS),
            b=np.array([self.arms[key].b for key in keys]).reshape(-1, DIMENSIONS),
            n=np.array([self.arms[key].n for key in keys], dtype=np.int64),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if stored["pooled_a"].shape != (DIMENSIONS, DIMENSIONS):
                raise ValueError("the stored model has other features than this code")
            arms = {
                str(key): _Sums(a, b, int(n))
                for key, a, b, n in zip(stored["keys"], stored["a"], stored["b"], stored["n"], strict=True)
            }
            return cls(_Sums(stored["pooled_a"], stored["pooled_b"], int(stored["pooled_n"])), arms)


class Scorer:
    """A model ready to score: inverses and coefficients computed once per model version."""

    def __init__(self, model: LinearModel, params: PolicyParams) -> None:
        self.params = params
        ridge = params.ridge * np.eye(DIMENSIONS)
        self.pooled_theta: Vector = np.linalg.solve(ridge + model.pooled.a, model.pooled.b)
        self.new_inverse: Matrix = np.eye(DIMENSIONS) / params.ridge
        self.index = {key: i for i, key in enumerate(model.arms)}
        self.seen = {key: sums.n for key, sums in model.arms.items()}
        if model.arms:
            a = np.array([sums.a for sums in model.arms.values()]) + ridge
            b = np.array([sums.b for sums in model.arms.values()]) + params.ridge * self.pooled_theta
            self.inverses: Matrix = np.linalg.inv(a)
            self.thetas: Matrix = np.einsum("kde,ke->kd", self.inverses, b)
        else:
            self.inverses = np.zeros((0, DIMENSIONS, DIMENSIONS))
            self.thetas = np.zeros((0, DIMENSIONS))

    def coefficients(self, candidates: Sequence[Candidate]) -> tuple[Matrix, Matrix]:
        """Each candidate's coefficients and inverse (the pooled ones for an offer not seen yet)."""
        thetas = np.empty((len(candidates), DIMENSIONS))
        inverses = np.empty((len(candidates), DIMENSIONS, DIMENSIONS))
        for row, candidate in enumerate(candidates):
            at = self.index.get(candidate.key)
            if at is None:
                thetas[row], inverses[row] = self.pooled_theta, self.new_inverse
            else:
                thetas[row], inverses[row] = self.thetas[at], self.inverses[at]
        return thetas, inverses

    def predicted(self, features: Matrix, candidates: Sequence[Candidate]) -> tuple[Vector, Vector]:
        """Predicted reward and its width, per candidate row of `features`."""
        return _predicted(features, *self.coefficients(candidates))

    def probabilities(self, context: Vector, candidates: Sequence[Candidate], position: int) -> Vector:
        """The exact probability of each candidate for this slot."""
        if not candidates:
            return np.zeros(0)
        return self.slot_probabilities(context, candidates, *self.coefficients(candidates), position)

    def slot_probabilities(
        self,
        context: Vector,
        candidates: Sequence[Candidate],
        thetas: Matrix,
        inverses: Matrix,
        position: int,
    ) -> Vector:
        """`probabilities` with the candidates' coefficients already gathered (once per slate)."""
        mean, width = _predicted(feature_matrix(context, candidates, position), thetas, inverses)
        cost = np.array([candidate.cost for candidate in candidates])
        return mixed(mean + self.params.ucb * width - self.params.cost_weight * cost, self.params)


def _predicted(features: Matrix, thetas: Matrix, inverses: Matrix) -> tuple[Vector, Vector]:
    mean = np.einsum("kd,kd->k", features, thetas)
    width = np.sqrt(np.maximum(np.einsum("kd,kde,ke->k", features, inverses, features), 0.0))
    return mean, width


def mixed(scores: Vector, params: PolicyParams) -> Vector:
    """Softmax of the scores mixed with uniform so that each keeps at least `min_probability`."""
    k = len(scores)
    if k > params.max_candidates:
        raise ValueError(f"{k} candidates cannot each keep probability {params.min_probability}")
    gamma = min(1.0, max(params.exploration, k * params.min_probability))
    weights = np.exp((scores - scores.max()) / params.temperature)
    probabilities: Vector = gamma / k + (1.0 - gamma) * weights / weights.sum()
    return probabilities


class Pick(msgspec.Struct, frozen=True):
    candidate: Candidate
    position: int
    propensity: float  # probability of this candidate for this slot, among those left for it
    candidates_left: int  # how many it was drawn among
    greedy: bool  # it was the slot's most probable candidate (else the draw explored)


def draw_slate(
    scorer: Scorer, context: Vector, candidates: Sequence[Candidate], slots: int, rng: np.random.Generator
) -> list[Pick]:
    """Up to `slots` offers, slot by slot without replacement, each with its exact probability."""
    thetas, inverses = scorer.coefficients(candidates)
    left = list(range(len(candidates)))
    picks: list[Pick] = []
    for position in range(1, min(slots, len(left)) + 1):
        pool = [candidates[index] for index in left]
        probabilities = scorer.slot_probabilities(context, pool, thetas[left], inverses[left], position)
        chosen = int(np.searchsorted(np.cumsum(probabilities), rng.random() * probabilities.sum(), "right"))
        chosen = min(chosen, len(pool) - 1)
        greedy = chosen == int(np.argmax(probabilities))
        picks.append(Pick(pool[chosen], position, float(probabilities[chosen]), len(pool), greedy))
        del left[chosen]
    return picks
