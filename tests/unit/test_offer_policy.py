"""The selection policy's probabilities, its learning, the off-policy estimators and the log readers."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from offers.evaluation import evaluate_log, frequency_policy
from offers.logs import LogFormatError, LoggedDecision, read_log
from offers.rules.estimators import LoggedRounds, estimate, relative_error
from offers.rules.features import Candidate, Context, context_vector, feature_matrix
from offers.rules.policy import LinearModel, Observation, PolicyParams, Scorer, draw_slate, mixed
from offers.simulation import simulate

PARAMS = PolicyParams()
CONTEXT = context_vector(Context(tokens=("lifecycle=active", "time=evening"), numbers=(("health", 0.6),)))
CANDIDATES = [Candidate(f"offer-{i}", affinity=i / 10, cost=i / 20) for i in range(8)]


def trained_scorer(seed: int = 1) -> Scorer:
    """A model that learned that offer-3 is clipped far more often than the others."""
    rng = np.random.default_rng(seed)
    observations = []
    for _ in range(400):
        chosen = CANDIDATES[int(rng.integers(0, len(CANDIDATES)))]
        features = feature_matrix(CONTEXT, [chosen], 1)[0]
        reward = float(rng.random() < (0.6 if chosen.key == "offer-3" else 0.05))
        observations.append(Observation(chosen.key, features, reward))
    return Scorer(LinearModel().learned(observations), PARAMS)


def test_probabilities_sum_to_one_and_keep_the_floor() -> None:
    scorer = trained_scorer()
    for position in (1, 2, 3):
        probabilities = scorer.probabilities(CONTEXT, CANDIDATES, position)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
        assert probabilities.min() >= PARAMS.min_probability
        assert probabilities.min() >= PARAMS.exploration / len(CANDIDATES) - 1e-12
    assert int(np.argmax(scorer.probabilities(CONTEXT, CANDIDATES, 1))) == 3  # it learned


def test_probabilities_are_exact_the_same_on_every_call() -> None:
    scorer = trained_scorer()
    first = scorer.probabilities(CONTEXT, CANDIDATES, 1)
    for _ in range(5):
        assert np.array_equal(scorer.probabilities(CONTEXT, CANDIDATES, 1), first)
    assert np.array_equal(trained_scorer().probabilities(CONTEXT, CANDIDATES, 1), first)


def test_draws_match_the_logged_probabilities() -> None:
    scorer = trained_scorer()
    probabilities = scorer.probabilities(CONTEXT, CANDIDATES, 1)
    rng = np.random.default_rng(42)
    draws = 40_000
    counts: Counter[str] = Counter()
    for _ in range(draws):
        (pick,) = draw_slate(scorer, CONTEXT, CANDIDATES, 1, rng)
        assert pick.propensity == pytest.approx(probabilities[CANDIDATES.index(pick.candidate)], abs=0)
        counts[pick.candidate.key] += 1
    for candidate, probability in zip(CANDIDATES, probabilities, strict=True):
        frequency = counts[candidate.key] / draws
        # Five standard errors: a correct sampler fails this about once in 3 million runs per offer.
        assert abs(frequency - probability) <= 5 * np.sqrt(probability * (1 - probability) / draws)


def test_a_slate_holds_distinct_offers_each_with_its_slot_probability() -> None:
    scorer = trained_scorer()
    picks = draw_slate(scorer, CONTEXT, CANDIDATES, 5, np.random.default_rng(3))
    assert [pick.position for pick in picks] == [1, 2, 3, 4, 5]
    assert len({pick.candidate.key for pick in picks}) == 5
    left = list(CANDIDATES)
    for pick in picks:
        expected = scorer.probabilities(CONTEXT, left, pick.position)[left.index(pick.candidate)]
        assert pick.propensity == expected
        assert pick.candidates_left == len(left)
        left.remove(pick.candidate)


def test_the_floor_holds_with_the_most_candidates_and_more_are_refused() -> None:
    params = PolicyParams(min_probability=0.005)
    scores = np.linspace(0, 50, params.max_candidates)  # one score far above the rest
    probabilities = mixed(scores, params)
    assert probabilities.min() >= params.min_probability - 1e-15
    with pytest.raises(ValueError, match="cannot each keep"):
        mixed(np.zeros(params.max_candidates + 1), params)


def test_the_points_cost_lowers_an_offer_s_probability() -> None:
    cheap, dear = Candidate("a", cost=0.0), Candidate("b", cost=5.0)
    scorer = Scorer(LinearModel(), PolicyParams(cost_weight=0.05))
    p = scorer.probabilities(CONTEXT, [cheap, dear], 1)
    assert p[0] > p[1]
    assert (
        Scorer(LinearModel(), PolicyParams(cost_weight=0)).probabilities(CONTEXT, [cheap, dear], 1)[0] == 0.5
    )


def test_a_new_offer_scores_as_the_average_offer_with_more_uncertainty() -> None:
    scorer = trained_scorer()
    new = Candidate("never-seen")
    features = feature_matrix(CONTEXT, [new, CANDIDATES[0]], 1)
    mean, width = scorer.predicted(features, [new, CANDIDATES[0]])
    assert mean[0] == pytest.approx(float(features[0] @ scorer.pooled_theta))
    assert width[0] > width[1]


def test_learning_in_batches_equals_learning_at_once_and_survives_storage() -> None:
    rng = np.random.default_rng(5)
    observations = [
        Observation(f"o{int(rng.integers(0, 4))}", rng.random(len(CONTEXT)), float(rng.integers(0, 2)))
        for _ in range(300)
    ]
    at_once = LinearModel().learned(observations)
    in_batches = (
        LinearModel().learned(observations[:100]).learned(observations[100:250]).learned(observations[250:])
    )
    stored = LinearModel.from_bytes(in_batches.to_bytes())
    assert stored.observations == at_once.observations == 300
    for key, sums in at_once.arms.items():
        assert np.allclose(stored.arms[key].a, sums.a)
        assert np.allclose(stored.arms[key].b, sums.b)
    p1 = Scorer(at_once, PARAMS).probabilities(CONTEXT, CANDIDATES, 1)
    p2 = Scorer(stored, PARAMS).probabilities(CONTEXT, CANDIDATES, 1)
    assert np.allclose(p1, p2)


def synthetic_log(rounds: int, seed: int) -> tuple[LoggedRounds, float]:
    """A uniform logging policy over 5 actions with known click rates; the evaluated policy prefers
    action 4. Its true value is sum(pi(a) * rate(a))."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.02, 0.05, 0.1, 0.2, 0.4])
    target = np.array([0.05, 0.05, 0.1, 0.2, 0.6])
    actions = rng.integers(0, 5, rounds)
    rewards = (rng.random(rounds) < rates[actions]).astype(float)
    model = rates + 0.05  # a reward model that is a little off: DR stays unbiased
    logged = LoggedRounds(
        reward=rewards,
        logged_probability=np.full(rounds, 0.2),
        target_probability=target[actions],
        model_of_logged=model[actions],
        model_expected=np.full(rounds, float(target @ model)),
    )
    return logged, float(target @ rates)


def test_the_estimators_recover_a_known_value() -> None:
    logged, truth = synthetic_log(200_000, seed=11)
    estimates = estimate(logged, resamples=200, seed=1)
    for interval in (estimates.ipw, estimates.snipw, estimates.dr):
        assert relative_error(interval.estimate, truth) < 0.03
        assert interval.low <= truth <= interval.high


def test_the_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    covered = 0
    runs = 60
    for seed in range(runs):
        logged, truth = synthetic_log(3_000, seed=seed)
        interval = estimate(logged, resamples=300, seed=seed).ipw
        covered += interval.low <= truth <= interval.high
    assert covered >= 0.85 * runs


def test_a_logging_policy_is_estimated_from_another_log() -> None:
    """Replay a logging policy's choice frequencies on a uniform log: the estimate finds its click rate."""
    rng = np.random.default_rng(9)
    rates = {"0": 0.01, "1": 0.05, "2": 0.3}
    candidates = tuple(Candidate(key) for key in rates)
    favoured = {"0": 0.1, "1": 0.2, "2": 0.7}

    def logged(choose: dict[str, float], n: int) -> list[LoggedDecision]:
        keys = list(choose)
        decisions = []
        for _ in range(n):
            key = keys[int(rng.choice(3, p=list(choose.values())))]
            decisions.append(
                LoggedDecision(
                    decided_at=datetime(2026, 1, 1, tzinfo=UTC),
                    context=Context(),
                    position=1,
                    candidates=candidates,
                    chosen=key,
                    propensity=choose[key],
                    reward=float(rng.random() < rates[key]),
                )
            )
        return decisions

    uniform_log = logged({key: 1 / 3 for key in rates}, 30_000)
    other_log = logged(favoured, 30_000)
    actual = float(np.mean([decision.reward for decision in other_log]))
    result = evaluate_log(uniform_log, "frequencies", PARAMS, reference=other_log, resamples=100)
    assert relative_error(result.estimates.ipw.estimate, actual) < 0.1
    probabilities = frequency_policy(other_log)(uniform_log[0])
    assert probabilities == pytest.approx([0.1, 0.2, 0.7], abs=0.02)


def write_open_bandit_csv(path: Path, rows: list[dict[str, object]]) -> None:
    fields = ["", "timestamp", "item_id", "position", "click", "propensity_score", "user_feature_0"]
    fields += [f"user-item_affinity_{i}" for i in range(3)]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for index, row in enumerate(rows):
            writer.writerow({"": index, **row})


def open_bandit_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "timestamp": "2019-11-24 00:03:13.442536+00:00",
        "item_id": 2,
        "position": 1,
        "click": 1,
        "propensity_score": 1 / 3,
        "user_feature_0": "cef339",
        "user-item_affinity_0": 0.0,
        "user-item_affinity_1": 0.5,
        "user-item_affinity_2": 0.25,
    }
    row.update(overrides)
    return row


def test_an_open_bandit_csv_becomes_decisions(tmp_path: Path) -> None:
    path = tmp_path / "any-campaign.csv"
    write_open_bandit_csv(
        path, [open_bandit_row(), open_bandit_row(timestamp="2019-11-23 00:00:00+00:00", item_id=0)]
    )
    decisions = read_log(path)
    assert [d.chosen for d in decisions] == ["0", "2"]  # oldest first
    assert decisions[1].context.tokens == ("user_feature_0=cef339",)
    assert [c.affinity for c in decisions[1].candidates] == [0.0, 0.5, 0.25]
    assert decisions[1].propensity == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"propensity_score": 0}, "propensity"),
        ({"item_id": 7}, "not among the candidates"),
        ({"position": 0}, "positions start at 1"),
        ({"timestamp": "2019-11-24 00:03:13"}, "time zone"),
        ({"click": "yes"}, "line 2"),
        ({"click": 7}, r"rewards must be in \[0, 1\]"),
        ({"user-item_affinity_1": "inf"}, "must be finite"),
    ],
)
def test_a_bad_open_bandit_row_names_its_line(
    tmp_path: Path, override: dict[str, object], error: str
) -> None:
    path = tmp_path / "bad.csv"
    write_open_bandit_csv(path, [open_bandit_row(**override)])
    with pytest.raises(LogFormatError, match=error):
        read_log(path)


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(LogFormatError, match="not an Open Bandit Dataset log"):
        read_log(path)


def test_the_simulated_members_teach_the_policy() -> None:
    result = simulate(PARAMS, seed=3, decisions=6_000, batch=500)
    assert result == simulate(PARAMS, seed=3, decisions=6_000, batch=500)  # reproducible from its seed
    late = result.curve[-4:]
    learned = np.mean([p.learned for p in late])
    assert learned > 1.5 * np.mean([p.uniform for p in late])
    assert learned > np.mean([p.best_fixed for p in late])
