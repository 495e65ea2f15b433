"""When a member engages: hour-of-week histograms, folded into their local hours, and their best hour.

Histograms count events per UTC hour of the week (0 = Monday 00:00-00:59 UTC). The best hour to reach
a member blends their own signals (app opens, push opens, check-ins) with the whole population's,
weighting the population like `POPULATION_WEIGHT` signals of their own: a member with two app opens is
mostly the population; one with two hundred is themselves. Pure: times and histograms in, answers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

HOURS_PER_WEEK = 7 * 24
POPULATION_WEIGHT = 24  # the population's habits count like this many of the member's own signals


def hour_of_week(moment: datetime) -> int:
    """0 = Monday 00:00-00:59 UTC ... 167 = Sunday 23:00 UTC, whatever offset `moment` carries."""
    utc = moment.astimezone(UTC)
    return utc.weekday() * 24 + utc.hour


def engagement(app_opens: Sequence[int], push_opens: Sequence[int], check_ins: Sequence[int]) -> list[int]:
    """App opens, push opens and check-ins per UTC hour of the week: when the member engages."""
    return [sum(counts) for counts in zip(app_opens, push_opens, check_ins, strict=True)]


def _coming_week(now: datetime) -> list[datetime]:
    """The middles of the 168 hours from the current one on: one instant for every UTC hour of the week."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [start + timedelta(hours=hours, minutes=30) for hours in range(HOURS_PER_WEEK)]


def local_hours(histogram: Sequence[float], now: datetime, time_zone: str) -> list[float]:
    """A UTC hour-of-week histogram folded into the 24 hours of the day in `time_zone`.

    Each UTC hour of the week is placed at the local hour its middle falls in during the coming week
    (from `now`), with that instant's own offset: daylight saving time and zones off the whole hour
    (India's +05:30) come out right for when a message would be sent. Counts collected under another
    offset (last summer's, for a member now on winter time) move with the clock, as habits do not:
    the price of binning in UTC, which every member's data shares.
    """
    zone = ZoneInfo(time_zone)
    by_local_hour = [0.0] * 24
    for middle in _coming_week(now):
        by_local_hour[middle.astimezone(zone).hour] += histogram[hour_of_week(middle)]
    return by_local_hour


def blended_weights(member: Sequence[int], population: Sequence[int]) -> list[float]:
    """The member's engagement per UTC hour of the week, shrunk toward the population's distribution.

    `(member_i + W * population_share_i) / (n + W)`, W = POPULATION_WEIGHT: sums to 1 when there is any
    signal at all, all zeros when neither the member nor the population has any.
    """
    signals, everyone = sum(member), sum(population)
    if signals + (POPULATION_WEIGHT if everyone else 0) == 0:
        return [0.0] * HOURS_PER_WEEK
    population_share = [count / everyone if everyone else 0.0 for count in population]
    prior = POPULATION_WEIGHT if everyone else 0
    return [
        (count + prior * share) / (signals + prior)
        for count, share in zip(member, population_share, strict=True)
    ]


class BestHour(msgspec.Struct, frozen=True):
    """The hour of day (member's zone) a message is most likely to be seen, and why."""

    local_hour: int
    source: Literal["member", "population", "fallback"]
    member_signals: int  # the member's own app opens, push opens and check-ins counted
    member_weight_percent: int  # how much those signals decide, against the population's habits
    explanation: str


def best_hour(
    member: Sequence[int], population: Sequence[int], now: datetime, time_zone: str, fallback_hour: int
) -> BestHour:
    signals = sum(member)
    weights = blended_weights(member, population)
    if not any(weights):
        return BestHour(
            local_hour=fallback_hour,
            source="fallback",
            member_signals=0,
            member_weight_percent=0,
            explanation=f"no engagement recorded yet, by anyone: the default {fallback_hour}:00",
        )
    by_local = local_hours(weights, now, time_zone)
    hour = max(range(24), key=lambda h: (by_local[h], -h))
    share = 100 * signals // (signals + POPULATION_WEIGHT) if sum(population) else 100
    source: Literal["member", "population"] = "member" if signals else "population"
    return BestHour(
        local_hour=hour,
        source=source,
        member_signals=signals,
        member_weight_percent=share,
        explanation=(
            f"{hour}:00 in {time_zone}: {signals} of the member's own app opens, push opens and check-ins "
            f"weigh {share}%, everyone's habits {100 - share}%"
        ),
    )


def best_instant(
    member: Sequence[int],
    population: Sequence[int],
    window_start: datetime,
    window_end: datetime,
    time_zone: str,
    fallback_hour: int,
) -> datetime:
    """When in [window_start, window_end) to reach the member: the whole hour with the most weight.

    Candidates are the window's start and every whole hour after it. The hour of the week with the most
    weight wins; between equals (a window on a weekday the member has no record of), the hour of the
    day with the most weight over the whole week, then the earliest. With no signal at all, the first
    candidate at the fallback local hour, else the window's start.
    """
    start = window_start.astimezone(UTC)
    first_whole = start.replace(minute=0, second=0, microsecond=0)
    if first_whole < start:
        first_whole += timedelta(hours=1)
    candidates = [start]
    at = first_whole
    while at < window_end:
        if at != start:
            candidates.append(at)
        at += timedelta(hours=1)
    weights = blended_weights(member, population)
    if not any(weights):
        zone = ZoneInfo(time_zone)
        return next((c for c in candidates if c.astimezone(zone).hour == fallback_hour), start)
    by_hour_of_day = [sum(weights[hour::24]) for hour in range(24)]  # UTC hours, as the week's are
    return max(candidates, key=lambda c: (weights[hour_of_week(c)], by_hour_of_day[c.hour], -c.timestamp()))
