"""A reproducible simulation of members with hidden preferences, run through the real selection and
learning code: does the policy learn, and how fast, against uniform random and the best fixed offer?

Each simulated member has a visible lifecycle stage, health and favourite category (what the traits
show) and hidden tastes; the chance they clip an offer is a logistic function of the offer's hidden
appeal, whether it is in their favourite category, and a hidden per-stage liking of it. Every decision
goes through `Scorer.probabilities` and `draw_slate`; every `batch` decisions the rewards are learned
(`LinearModel.learned`, as the worker does) and a new policy version serves the next batch.
"""

from __future__ import annotations

import msgspec
import numpy as np

from offers.rules.features import Candidate, Context, context_vector, feature_matrix
from offers.rules.policy import LinearModel, Observation, PolicyParams, Scorer, draw_slate

STAGES = ("new", "active", "at_risk", "lapsed")
HOURS = ("morning", "afternoon", "evening", "night")


class CurvePoint(msgspec.Struct, frozen=True):
    decisions: int  # decisions made by the end of this batch
    learned: float  # mean reward of the batch's decisions under the learning policy
    uniform: float  # expected reward of the same members under uniform random choice
    best_fixed: float  # expected reward of the same members shown the best single offer


class SimulationResult(msgspec.Struct, frozen=True):
    seed: int
    members: int
    offers: int
    curve: list[CurvePoint]

    def totals(self) -> CurvePoint:
        """Means over the whole run."""
        return CurvePoint(
            decisions=self.curve[-1].decisions,
            learned=float(np.mean([p.learned for p in self.curve])),
            uniform=float(np.mean([p.uniform for p in self.curve])),
            best_fixed=float(np.mean([p.best_fixed for p in self.curve])),
        )


def simulate(
    params: PolicyParams,
    *,
    seed: int = 7,
    members: int = 2_000,
    offers: int = 12,
    categories: int = 4,
    decisions: int = 20_000,
    batch: int = 500,
) -> SimulationResult:
    rng = np.random.default_rng(seed)
    offer_category = rng.integers(0, categories, offers)
    appeal = rng.normal(-2.6, 0.5, offers)
    stage_taste = rng.normal(0.0, 1.0, (len(STAGES), offers))
    member_stage = rng.integers(0, len(STAGES), members)
    member_favourite = rng.integers(0, categories, members)
    member_health = rng.random(members)
    logits = (
        appeal[np.newaxis, :]
        + 1.6 * (offer_category[np.newaxis, :] == member_favourite[:, np.newaxis])
        + stage_taste[member_stage]
    )
    clip_chance = 1 / (1 + np.exp(-logits))  # members x offers
    best_offer = int(clip_chance.mean(axis=0).argmax())

    model = LinearModel()
    scorer = Scorer(model, params)
    curve: list[CurvePoint] = []
    observations: list[Observation] = []
    rewards: list[float] = []
    uniform: list[float] = []
    fixed: list[float] = []
    for decision in range(1, decisions + 1):
        member = int(rng.integers(0, members))
        context = context_vector(
            Context(
                tokens=(f"lifecycle={STAGES[member_stage[member]]}", f"hour={HOURS[rng.integers(0, 4)]}"),
                numbers=(("health", float(member_health[member])),),
            )
        )
        candidates = [
            Candidate(str(offer), affinity=0.8 if offer_category[offer] == member_favourite[member] else 0.1)
            for offer in range(offers)
        ]
        (pick,) = draw_slate(scorer, context, candidates, 1, rng)
        chosen = int(pick.candidate.key)
        reward = float(rng.random() < clip_chance[member, chosen])
        features = feature_matrix(context, [pick.candidate], 1)[0]
        observations.append(Observation(pick.candidate.key, features, reward))
        rewards.append(reward)
        uniform.append(float(clip_chance[member].mean()))
        fixed.append(float(clip_chance[member, best_offer]))
        if decision % batch == 0:
            curve.append(
                CurvePoint(decision, float(np.mean(rewards)), float(np.mean(uniform)), float(np.mean(fixed)))
            )
            model = model.learned(observations)
            scorer = Scorer(model, params)
            observations, rewards, uniform, fixed = [], [], [], []
    return SimulationResult(seed=seed, members=members, offers=offers, curve=curve)
