"""Off-policy estimates of a policy's mean reward from another policy's log, with bootstrap intervals.

For logged round i (context x_i, action a_i, reward r_i, logging probability p_i) and the evaluated
policy pi with a reward model q:
- IPW: mean(w_i r_i), w_i = pi(a_i | x_i) / p_i; unbiased when every action pi takes could be logged.
- SNIPW: sum(w_i r_i) / sum(w_i); a little biased, much less variable when weights are large.
- DR: mean(sum_a pi(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i))); unbiased if either the
  propensities or the reward model are right, and less variable than IPW when q is fair.
Intervals: percentile bootstrap over rounds (the same resamples for the three estimators).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating[Any]]


class Interval(msgspec.Struct, frozen=True):
    estimate: float
    low: float
    high: float


class Estimates(msgspec.Struct, frozen=True):
    rounds: int
    ipw: Interval
    snipw: Interval
    dr: Interval


class LoggedRounds(msgspec.Struct, frozen=True):
    """Per round: the reward, the logging probability of the logged action, the evaluated policy's
    probability of it, the reward model's value of it, and the policy's expected reward under the model."""

    reward: Array
    logged_probability: Array
    target_probability: Array
    model_of_logged: Array
    model_expected: Array

    def __post_init__(self) -> None:
        if len(self.reward) == 0:
            raise ValueError("no logged rounds to evaluate on")
        if np.any(self.logged_probability <= 0) or np.any(self.logged_probability > 1):
            raise ValueError("logged probabilities must be in (0, 1]")


def _point(rounds: LoggedRounds, index: npt.NDArray[np.intp]) -> tuple[float, float, float]:
    weight = rounds.target_probability[index] / rounds.logged_probability[index]
    reward = rounds.reward[index]
    weighted = weight * reward
    ipw = float(weighted.mean())
    snipw = float(weighted.sum() / weight.sum()) if weight.sum() > 0 else 0.0
    dr = float((rounds.model_expected[index] + weight * (reward - rounds.model_of_logged[index])).mean())
    return ipw, snipw, dr


def estimate(rounds: LoggedRounds, resamples: int = 1_000, seed: int = 0, level: float = 0.95) -> Estimates:
    n = len(rounds.reward)
    ipw, snipw, dr = _point(rounds, np.arange(n))
    rng = np.random.default_rng(seed)
    boot = np.array([_point(rounds, rng.integers(0, n, n)) for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    low = np.percentile(boot, tail, axis=0)
    high = np.percentile(boot, 100 - tail, axis=0)
    return Estimates(
        rounds=n,
        ipw=Interval(ipw, float(low[0]), float(high[0])),
        snipw=Interval(snipw, float(low[1]), float(high[1])),
        dr=Interval(dr, float(low[2]), float(high[2])),
    )


def relative_error(estimate: float, actual: float) -> float:
    return abs(estimate - actual) / actual if actual else float("inf")
