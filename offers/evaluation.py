"""Off-policy evaluation on a decision log: the serving policy's code, trained on the log's earlier part
and evaluated on its later part; or a reference policy (uniform, or the choice frequencies of another log).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from offers.logs import LoggedDecision
from offers.rules.estimators import Estimates, LoggedRounds, estimate
from offers.rules.features import Candidate, context_vector, feature_matrix
from offers.rules.policy import LinearModel, Observation, PolicyParams, Scorer

# The probabilities a policy gives to a decision's candidates.
Policy = Callable[[LoggedDecision], np.ndarray]


class Evaluation(msgspec.Struct, frozen=True):
    policy: str
    trained_on: int  # decisions the policy learned from (0: it needs none)
    evaluated_on: int
    logged_reward: float  # what the logging policy achieved on the evaluated part
    estimates: Estimates


def split_by_time(
    decisions: Sequence[LoggedDecision], train_share: float
) -> tuple[list[LoggedDecision], ...]:
    cut = int(len(decisions) * train_share)
    return list(decisions[:cut]), list(decisions[cut:])


def observation(decision: LoggedDecision) -> Observation:
    chosen = next(c for c in decision.candidates if c.key == decision.chosen)
    features = feature_matrix(context_vector(decision.context), [chosen], decision.position)[0]
    return Observation(decision.chosen, features, decision.reward)


def trained(decisions: Sequence[LoggedDecision]) -> LinearModel:
    return LinearModel().learned(observation(decision) for decision in decisions)


def serving_policy(scorer: Scorer) -> Policy:
    def probabilities(decision: LoggedDecision) -> np.ndarray:
        return scorer.probabilities(context_vector(decision.context), decision.candidates, decision.position)

    return probabilities


def uniform_policy(decision: LoggedDecision) -> np.ndarray:
    return np.full(len(decision.candidates), 1 / len(decision.candidates))


def frequency_policy(reference: Sequence[LoggedDecision]) -> Policy:
    """A context-free policy that chooses as often as `reference` chose, per position (how a logged
    policy such as the Open Bandit Dataset's Bernoulli Thompson Sampling is replayed on another log)."""
    counts = Counter((decision.position, decision.chosen) for decision in reference)
    per_position = Counter(decision.position for decision in reference)

    def probabilities(decision: LoggedDecision) -> np.ndarray:
        total = per_position[decision.position]
        if not total:
            return uniform_policy(decision)
        return np.array([counts[(decision.position, c.key)] / total for c in decision.candidates])

    return probabilities


def evaluate(
    name: str,
    policy: Policy,
    decisions: Sequence[LoggedDecision],
    reward_model: Scorer,
    trained_on: int,
    resamples: int,
    seed: int,
) -> Evaluation:
    """IPW, SNIPW and DR of `policy` on `decisions`; `reward_model`'s predictions are DR's model."""
    reward, logged, target, of_logged, expected = [], [], [], [], []
    for decision in decisions:
        probabilities = policy(decision)
        predicted = _predicted(reward_model, decision)
        chosen = _index(decision.candidates, decision.chosen)
        reward.append(decision.reward)
        logged.append(decision.propensity)
        target.append(probabilities[chosen])
        of_logged.append(predicted[chosen])
        expected.append(float(probabilities @ predicted))
    rounds = LoggedRounds(
        *(np.array(values, dtype=float) for values in (reward, logged, target, of_logged, expected))
    )
    return Evaluation(
        policy=name,
        trained_on=trained_on,
        evaluated_on=len(decisions),
        logged_reward=float(np.mean(reward)),
        estimates=estimate(rounds, resamples=resamples, seed=seed),
    )


def _predicted(scorer: Scorer, decision: LoggedDecision) -> np.ndarray:
    features = feature_matrix(context_vector(decision.context), decision.candidates, decision.position)
    mean, _ = scorer.predicted(features, decision.candidates)
    return np.clip(mean, 0.0, 1.0)


def _index(candidates: Sequence[Candidate], key: str) -> int:
    return next(i for i, candidate in enumerate(candidates) if candidate.key == key)


def evaluate_log(
    decisions: Sequence[LoggedDecision],
    policy_name: str,
    params: PolicyParams,
    *,
    reference: Sequence[LoggedDecision] = (),
    train_share: float = 0.7,
    resamples: int = 1_000,
    seed: int = 0,
) -> Evaluation:
    """`learned`: the serving policy trained on the first `train_share` of the log, evaluated on the rest.
    `uniform` and `frequencies` (of `reference`) need no training: evaluated on the whole log, with DR's
    reward model fitted on that log."""
    if policy_name == "learned":
        train, test = split_by_time(decisions, train_share)
        if not train or not test:
            raise ValueError("the log is too short to split into a training and an evaluation part")
        scorer = Scorer(trained(train), params)
        return evaluate("learned", serving_policy(scorer), test, scorer, len(train), resamples, seed)
    reward_model = Scorer(trained(decisions), params)
    if policy_name == "uniform":
        return evaluate("uniform", uniform_policy, decisions, reward_model, 0, resamples, seed)
    if policy_name == "frequencies":
        if not reference:
            raise ValueError("the frequencies policy needs a reference log")
        return evaluate(
            "frequencies", frequency_policy(reference), decisions, reward_model, 0, resamples, seed
        )
    raise ValueError(f"unknown policy {policy_name!r}")
