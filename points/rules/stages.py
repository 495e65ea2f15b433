"""Miles periods and member stages: pure, with times passed in.

Documented stage policy:

- **Stages come from miles earned in a period, never from the spendable points balance**, so
  spending or expiring points never costs a member their stage.
- **Miles periods are years starting on the reset date** (1 April by default) at 00:00 local time in
  the program's time zone; miles start again from 0 at each reset. 29 February is refused as a reset
  date, so every period is exactly one calendar year and none is skipped.
- **A stage reached in a period is kept through the whole next period:** the current stage is the
  higher of the stage for this period's miles and the stage for the previous period's miles. At a
  reset nobody drops at once; a member drops at most to what they re-qualify for, one period later.
- **A stage bonus is held while the period's miles reach its threshold** (`bonus_changes`): paid
  when the threshold is first reached (ascending, even when one sale jumps several stages); taken back
  when a return takes the period's miles below it again (as owed points if they were spent), so buying
  to cross a stage and returning everything nets nothing; paid again, once, if later miles cross it
  again. At any moment a member holds exactly the bonuses of the thresholds their miles reach.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec


class Stage(StrEnum):
    BASIC = "basic"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"
    DIAMOND = "diamond"


_RANK = {stage: rank for rank, stage in enumerate(Stage)}


class StageThreshold(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Reaching `miles` in a period gives `stage`, and once per period `bonus_points`."""

    stage: Stage
    miles: int
    bonus_points: int


DEFAULT_THRESHOLDS = (
    StageThreshold(Stage.BASIC, 0, 0),
    StageThreshold(Stage.SILVER, 5_000, 100),
    StageThreshold(Stage.GOLD, 20_000, 300),
    StageThreshold(Stage.PLATINUM, 50_000, 500),
    StageThreshold(Stage.DIAMOND, 100_000, 1_000),
)


class StagePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Stage thresholds and the yearly miles reset (default: 1 April, 00:00 Tokyo time)."""

    thresholds: tuple[StageThreshold, ...] = DEFAULT_THRESHOLDS
    reset_month: int = 4
    reset_day: int = 1
    time_zone: str = "Asia/Tokyo"

    def __post_init__(self) -> None:
        if not self.thresholds or self.thresholds[0].miles != 0:
            raise ValueError("the first stage threshold must be at 0 miles")
        for lower, upper in zip(self.thresholds, self.thresholds[1:], strict=False):
            if upper.miles <= lower.miles:
                raise ValueError("stage thresholds must be strictly ascending in miles")
            if _RANK[upper.stage] <= _RANK[lower.stage]:
                raise ValueError("stages must be listed in ascending order, each once")
        if any(threshold.bonus_points < 0 for threshold in self.thresholds):
            raise ValueError("stage bonus points cannot be negative")
        if not 1 <= self.reset_month <= 12:
            raise ValueError("reset_month must be 1..12")
        if (self.reset_month, self.reset_day) == (2, 29):
            raise ValueError("29 February is not a reset date: it does not occur every year")
        if not 1 <= self.reset_day <= calendar.monthrange(2001, self.reset_month)[1]:
            raise ValueError(f"reset_day {self.reset_day} does not exist in month {self.reset_month}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"{self.time_zone!r} is not an IANA time zone name") from error


def period_start(at: datetime, policy: StagePolicy) -> datetime:
    """The UTC instant the miles period containing `at` began (the reset date, 00:00 local time)."""
    return _reset_in(_period_year(at, policy), policy)


def next_period_start(at: datetime, policy: StagePolicy) -> datetime:
    """The UTC instant the period after the one containing `at` begins (when miles next reset)."""
    return _reset_in(_period_year(at, policy) + 1, policy)


def previous_period_start(at: datetime, policy: StagePolicy) -> datetime:
    """The UTC instant the period before the one containing `at` began (whose stage is carried over)."""
    return _reset_in(_period_year(at, policy) - 1, policy)


def stage_for_miles(miles: int, policy: StagePolicy) -> Stage:
    """The highest stage whose threshold `miles` reaches (the first stage for 0 or fewer miles)."""
    return _threshold_for(miles, policy).stage


def current_stage(miles_this_period: int, miles_previous_period: int, policy: StagePolicy) -> Stage:
    """The stage a member holds now: the better of this period's and the previous period's."""
    return max(
        stage_for_miles(miles_this_period, policy),
        stage_for_miles(miles_previous_period, policy),
        key=_RANK.__getitem__,
    )


def bonus_points_of(stage: Stage, policy: StagePolicy) -> int:
    """The bonus the policy pays for reaching `stage` (0 for a stage it no longer has)."""
    return next((t.bonus_points for t in policy.thresholds if t.stage is stage), 0)


class BonusChanges(msgspec.Struct, frozen=True):
    grant: list[StageThreshold]  # thresholds now reached whose bonus is not held: pay it
    take_back: list[Stage]  # held bonuses whose threshold the miles no longer reach: reverse them


def bonus_changes(miles: int, held: Collection[Stage], policy: StagePolicy) -> BonusChanges:
    """What to pay or reverse so the member holds exactly the bonuses of the thresholds `miles` reach.

    `held` are the bonuses paid in the period and not taken back. The first threshold (0 miles) has
    no bonus to pay. Granting is idempotent: a bonus already held is never paid again.
    """
    reached = {t.stage for t in policy.thresholds[1:] if t.miles <= miles}
    return BonusChanges(
        grant=[t for t in policy.thresholds[1:] if t.stage in reached and t.stage not in held],
        take_back=[stage for stage in sorted(held, key=_RANK.__getitem__) if stage not in reached],
    )


def next_stage(miles_this_period: int, policy: StagePolicy) -> tuple[Stage, int] | None:
    """The next stage above the one this period's miles reach, and the miles still missing; None at the top.

    Based on this period's miles only: a stage carried from last period still has to be re-earned.
    """
    for threshold in policy.thresholds:
        if threshold.miles > miles_this_period:
            return threshold.stage, threshold.miles - miles_this_period
    return None


def _threshold_for(miles: int, policy: StagePolicy) -> StageThreshold:
    reached = policy.thresholds[0]
    for threshold in policy.thresholds[1:]:
        if threshold.miles > miles:
            break
        reached = threshold
    return reached


def _period_year(at: datetime, policy: StagePolicy) -> int:
    """The local calendar year in which the period containing `at` began."""
    if at.tzinfo is None:
        raise ValueError("miles periods need a timezone-aware datetime")
    year = at.astimezone(ZoneInfo(policy.time_zone)).year
    return year if at >= _reset_in(year, policy) else year - 1


def _reset_in(year: int, policy: StagePolicy) -> datetime:
    """The reset instant in `year`, in UTC.

    Local midnight with fold=0: where a daylight-saving gap swallows midnight, this is the first
    instant of the local day; where midnight occurs twice, its first occurrence.
    """
    local = datetime(year, policy.reset_month, policy.reset_day, tzinfo=ZoneInfo(policy.time_zone))
    return local.astimezone(UTC)
