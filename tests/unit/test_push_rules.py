"""Push decisions without I/O: scheduling in members' zones, quiet hours, groups, templates, caps,
FCM outcomes, report statistics, and best hours."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.rates import wilson
from push.errors import MessageTooLarge, UnknownMessageField
from push.rules.caps import local_day_and_week, may_send, within_caps
from push.rules.deliveries import AtClaim, CampaignTerms, MemberPlan, at_claim, plan_member
from push.rules.groups import in_campaign_control, in_global_control, pick_variant
from push.rules.outcomes import Outcome, classify, gives_up, retry_delay_s
from push.rules.report import lift
from push.rules.scheduling import (
    Plan,
    QuietHours,
    Schedule,
    SendAtBestHour,
    SendAtLocalTime,
    SendNow,
    SendRecurring,
    is_quiet,
    plan_delivery,
)
from push.rules.templates import (
    FIELDS,
    MAX_PAYLOAD_BYTES,
    check_message,
    payload_bytes,
    render,
    worst_case_data,
)
from timeline.engagement import HOURS_PER_WEEK, best_hour, best_instant, blended_weights, hour_of_week

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 09:00 in Tokyo, Monday 19:00 in New York
NIGHT = QuietHours(start="22:00", end="08:00")
NOBODY = [0] * HOURS_PER_WEEK


def plan(
    schedule: Schedule, zone: str, *, quiet: QuietHours | None = None, now: datetime = NOW, **kw: object
) -> Plan:
    arguments: dict[str, object] = {
        "occurrence": None,
        "time_zone": zone,
        "engagement": NOBODY,
        "population": NOBODY,
        "fallback_hour": 19,
        "quiet": quiet,
        "late": timedelta(hours=1),
        "now": now,
    } | kw
    return plan_delivery(schedule, **arguments)  # type: ignore[arg-type]


# --- scheduling -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "due"),
    [
        ("Asia/Tokyo", datetime(2026, 11, 25, 0, 0, tzinfo=UTC)),  # 09:00 +09:00
        ("America/New_York", datetime(2026, 11, 25, 14, 0, tzinfo=UTC)),  # 09:00 -05:00
        ("Asia/Kolkata", datetime(2026, 11, 25, 3, 30, tzinfo=UTC)),  # 09:00 +05:30
    ],
)
def test_a_local_time_is_the_wall_clock_time_in_each_members_zone(zone: str, due: datetime) -> None:
    assert plan(SendAtLocalTime(date=date(2026, 11, 25), time="09:00"), zone).due_at == due


def test_across_a_daylight_saving_change_the_wall_clock_time_holds() -> None:
    before = plan(
        SendAtLocalTime(date=date(2026, 10, 31), time="09:00"),
        "America/New_York",
        now=datetime(2026, 10, 30, tzinfo=UTC),
    )
    after = plan(
        SendAtLocalTime(date=date(2026, 11, 2), time="09:00"),
        "America/New_York",
        now=datetime(2026, 10, 30, tzinfo=UTC),
    )
    assert before.due_at == datetime(2026, 10, 31, 13, 0, tzinfo=UTC)  # EDT, -04:00
    assert after.due_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # EST, -05:00


def test_a_skipped_local_time_goes_an_hour_later_on_the_wall() -> None:
    # 8 March 2026, New York: clocks jump from 02:00 to 03:00; 02:30 does not exist.
    planned = plan(
        SendAtLocalTime(date=date(2026, 3, 8), time="02:30"),
        "America/New_York",
        now=datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert planned.due_at is not None
    assert planned.due_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "03:30"


@pytest.mark.parametrize(("minutes_late", "sent_now"), [(0, True), (59, True), (61, False)])
def test_a_local_time_already_passed_is_sent_if_at_most_an_hour_late(
    minutes_late: int, sent_now: bool
) -> None:
    wanted = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    planned = plan(
        SendAtLocalTime(date=date(2026, 11, 24), time="09:00"),
        "Asia/Tokyo",
        now=wanted + timedelta(minutes=minutes_late),
    )
    if sent_now:
        assert planned.due_at == wanted + timedelta(minutes=minutes_late)
    else:
        assert (planned.due_at, planned.skipped) == (None, "too_late")


def test_quiet_hours_delay_a_send_to_their_end_in_the_members_zone() -> None:
    # "Now" is 19:00 in New York and 09:00 in Tokyo (not quiet), 00:00 in London (quiet until 08:00).
    assert plan(SendNow(), "America/New_York", quiet=NIGHT).due_at == NOW
    assert plan(SendNow(), "Asia/Tokyo", quiet=NIGHT).due_at == NOW
    london = plan(SendNow(), "Europe/London", quiet=NIGHT)
    assert london.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_quiet_hours_past_the_window_skip_the_send() -> None:
    window = SendAtBestHour(window_start=NOW, window_end=NOW + timedelta(hours=2))  # 11:00-13:00 in Sydney
    sydney_night = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 00:00 in Sydney
    late_window = SendAtBestHour(window_start=sydney_night, window_end=sydney_night + timedelta(hours=3))
    assert plan(window, "Australia/Sydney", quiet=NIGHT).skipped is None
    assert plan(late_window, "Australia/Sydney", quiet=NIGHT, now=sydney_night).skipped == "quiet_hours"


@pytest.mark.parametrize(
    ("local", "quiet"),
    [("21:59", False), ("22:00", True), ("03:00", True), ("07:59", True), ("08:00", False)],
)
def test_quiet_hours_over_midnight(local: str, quiet: bool) -> None:
    hour, minute = map(int, local.split(":"))
    at = datetime(2026, 11, 24, hour, minute, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert is_quiet(at, NIGHT, "Asia/Tokyo") is quiet


def test_recurring_occurrences_and_their_due_times() -> None:
    weekly = SendRecurring(
        time="09:00", start_date=date(2026, 11, 23), end_date=date(2026, 12, 7), weekdays=["mon"]
    )
    assert weekly.occurrences() == [date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)]
    due = plan(weekly, "Asia/Tokyo", occurrence=date(2026, 11, 30)).due_at
    assert due == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_bad_schedules_and_quiet_hours_are_refused_by_their_schemas() -> None:
    for bad in (
        b'{"kind": "best_hour", "window_start": "2026-11-25T00:00:00Z", '
        b'"window_end": "2026-12-05T00:00:00Z"}',
        b'{"kind": "local_time", "date": "2026-11-25", "time": "25:00"}',
        b'{"kind": "recurring", "time": "09:00", "start_date": "2026-11-25", "end_date": "2026-11-24"}',
        b'{"kind": "sometime"}',
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Schedule)
    for bad in (b'{"start": "22:00", "end": "22:00"}', b'{"start": "9pm", "end": "08:00"}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=QuietHours)


# --- groups -----------------------------------------------------------------------------------------


def test_control_groups_are_stable_and_near_their_percentage() -> None:
    members = [uuid.UUID(int=n * 7919 + 1) for n in range(20_000)]
    campaign = uuid.UUID(int=42)
    held = [m for m in members if in_global_control(m, 5)]
    assert held == [m for m in members if in_global_control(m, 5)]  # the same every time
    assert 0.04 < len(held) / len(members) < 0.06
    campaign_held = {m for m in members if in_campaign_control(m, campaign, 10)}
    assert 0.09 < len(campaign_held) / len(members) < 0.11
    overlap = len(campaign_held & set(held)) / len(held)
    assert 0.06 < overlap < 0.14  # independent of the global group: about 10 % of it


def test_variants_follow_their_weights_and_stay_put() -> None:
    members = [uuid.UUID(int=n * 104729 + 3) for n in range(10_000)]
    campaign = uuid.UUID(int=7)
    picks = [pick_variant(m, campaign, [("A", 3), ("B", 1)]) for m in members]
    assert 0.72 < picks.count("A") / len(picks) < 0.78
    assert picks == [pick_variant(m, campaign, [("A", 3), ("B", 1)]) for m in members]


# --- templates --------------------------------------------------------------------------------------


def test_templates_render_known_fields_and_refuse_unknown_ones() -> None:
    assert (
        render(
            "{display_name}さん、{points_balance}ポイント", {"display_name": "花子", "points_balance": "120"}
        )
        == "花子さん、120ポイント"
    )
    with pytest.raises(UnknownMessageField):
        check_message("Hi {first_name}", "body", None)


def test_a_message_that_could_exceed_fcms_limit_is_refused() -> None:
    check_message("{display_name}", "あ" * 1000, "https://example.jp/x")
    with pytest.raises(MessageTooLarge):
        check_message("{display_name}", "あ" * 1300, None)
    assert payload_bytes("t", "b", {}) < MAX_PAYLOAD_BYTES


def _accepted(title: str, body: str) -> bool:
    try:
        check_message(title, body, None)
    except MessageTooLarge:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        "\N{GRINNING FACE}" * 80,  # four bytes each
        "\u0001" * 80,  # six bytes each once JSON-escaped, were they kept
        '"\\' * 40,  # two bytes each escaped
        "\N{GRINNING FACE}" * 500,  # longer than any name may be
    ],
)
def test_a_message_accepted_at_its_limit_fits_whatever_the_members_fields_hold(value: str) -> None:
    title = "{display_name}" * 10
    body = "a" * max(n for n in range(MAX_PAYLOAD_BYTES) if _accepted(title, "a" * n))
    assert not _accepted(title, body + "a")  # accepted with not a byte to spare
    values = dict.fromkeys(FIELDS, value)
    data = worst_case_data(None)
    assert payload_bytes(render(title, values), render(body, values), data) <= MAX_PAYLOAD_BYTES


# --- caps -------------------------------------------------------------------------------------------


def test_days_and_weeks_are_the_members_own() -> None:
    at = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Monday 01:00 in Tokyo, Sunday 11:00 in New York
    tokyo_day, _, tokyo_week, _ = local_day_and_week(at, "Asia/Tokyo")
    ny_day, _, ny_week, _ = local_day_and_week(at, "America/New_York")
    assert (tokyo_day, tokyo_week) == (datetime(2026, 11, 22, 15, 0, tzinfo=UTC),) * 2  # Monday starts both
    assert ny_day == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    assert ny_week == datetime(2026, 11, 16, 5, 0, tzinfo=UTC)
    assert within_caps(1, 4, 2, 5)
    assert not within_caps(2, 2, 2, 5)
    assert not within_caps(0, 5, 2, 5)


# --- outcomes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "known_valid", "outcome"),
    [
        (None, False, Outcome.SENT),
        ("UNREGISTERED", False, Outcome.DEAD_ADDRESS),
        ("SENDER_ID_MISMATCH", False, Outcome.DEAD_ADDRESS),
        ("INVALID_ARGUMENT", True, Outcome.DEAD_ADDRESS),
        ("INVALID_ARGUMENT", False, Outcome.FAILED),
        ("QUOTA_EXCEEDED", False, Outcome.RETRY),
        ("UNAVAILABLE", False, Outcome.RETRY),
        ("INTERNAL", False, Outcome.RETRY),
        ("THIRD_PARTY_AUTH_ERROR", False, Outcome.FAILED),
        ("OUTCOME_UNKNOWN", False, Outcome.UNCONFIRMED),
        ("DEADLINE_EXCEEDED", True, Outcome.UNCONFIRMED),
    ],
)
def test_fcm_answers(code: str | None, known_valid: bool, outcome: Outcome) -> None:
    assert classify(code, known_valid) is outcome


@given(st.integers(1, 30), st.none() | st.floats(0, 3600), st.floats(0, 0.999))
def test_backoff_grows_honours_retry_after_and_stays_bounded(
    attempt: int, retry_after: float | None, jitter: float
) -> None:
    delay = retry_delay_s(attempt, retry_after, jitter)
    assert delay >= (retry_after or 0)
    assert delay <= max(retry_after or 0, 900)
    assert delay >= min(900, 2 * 2 ** (attempt - 1)) / 2


def test_retrying_stops_after_the_limit() -> None:
    assert not gives_up(NOW, NOW + timedelta(hours=23), timedelta(hours=24))
    assert gives_up(NOW, NOW + timedelta(hours=25), timedelta(hours=24))


# --- report -----------------------------------------------------------------------------------------


def test_wilson_interval_matches_known_values() -> None:
    rate = wilson(10, 100)
    assert rate.rate == 0.1
    assert rate.low == pytest.approx(0.0552, abs=1e-4)
    assert rate.high == pytest.approx(0.1744, abs=1e-4)
    assert wilson(0, 0).rate is None
    assert wilson(0, 50).low == 0.0


def test_lift_and_its_interval() -> None:
    result = lift(120, 1000, 100, 1000)
    assert result.lift == pytest.approx(0.2)
    assert result.low is not None
    assert result.high is not None
    assert result.low < 0.2 < result.high
    assert lift(0, 1000, 10, 1000).lift is None


# --- best hour --------------------------------------------------------------------------------------


def evenings(local_hour: int, zone: str, count: int) -> list[int]:
    histogram = [0] * HOURS_PER_WEEK
    for day in range(count):
        at = datetime(2026, 11, 16 + day % 7, local_hour, 10, tzinfo=ZoneInfo(zone))
        histogram[hour_of_week(at)] += 1
    return histogram


def test_a_member_with_many_signals_is_themselves_one_with_none_is_everyone() -> None:
    population = evenings(12, "Asia/Tokyo", 5_000)
    regular = best_hour(evenings(21, "Asia/Tokyo", 200), population, NOW, "Asia/Tokyo", 19)
    assert (regular.local_hour, regular.source) == (21, "member")
    assert regular.member_weight_percent >= 89
    newcomer = best_hour(NOBODY, population, NOW, "Asia/Tokyo", 19)
    assert (newcomer.local_hour, newcomer.source) == (12, "population")
    unknown = best_hour(NOBODY, NOBODY, NOW, "Asia/Tokyo", 19)
    assert (unknown.local_hour, unknown.source) == (19, "fallback")
    thin = best_hour(evenings(21, "Asia/Tokyo", 2), population, NOW, "Asia/Tokyo", 19)
    assert thin.local_hour == 12  # two opens do not outweigh everyone's habits
    assert "21" not in thin.explanation.split(":")[0]


def test_best_hour_is_in_the_members_zone_with_daylight_saving() -> None:
    summer = datetime(2026, 7, 15, tzinfo=UTC)
    member = evenings(8, "America/New_York", 50)  # collected in November: 08:00 EST = 13:00 UTC
    assert best_hour(member, NOBODY, NOW, "America/New_York", 19).local_hour == 8
    # The same UTC hour falls at 09:00 on summer time: the histogram is UTC, the answer local.
    assert best_hour(member, NOBODY, summer, "America/New_York", 19).local_hour == 9


def test_best_instant_picks_the_heaviest_hour_in_the_window() -> None:
    member = evenings(21, "Asia/Tokyo", 100)
    start = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    chosen = best_instant(member, NOBODY, start, start + timedelta(days=1), "Asia/Tokyo", 19)
    assert chosen.astimezone(ZoneInfo("Asia/Tokyo")).hour == 21
    assert start <= chosen < start + timedelta(days=1)
    fallback = best_instant(NOBODY, NOBODY, start, start + timedelta(days=1), "Asia/Tokyo", 19)
    assert fallback.astimezone(ZoneInfo("Asia/Tokyo")).hour == 19


@given(
    st.lists(st.integers(0, 5), min_size=HOURS_PER_WEEK, max_size=HOURS_PER_WEEK),
    st.lists(st.integers(0, 50), min_size=HOURS_PER_WEEK, max_size=HOURS_PER_WEEK),
)
def test_blended_weights_are_a_distribution(member: list[int], population: list[int]) -> None:
    weights = blended_weights(member, population)
    if sum(member) or sum(population):
        assert sum(weights) == pytest.approx(1.0)
    else:
        assert weights == [0.0] * HOURS_PER_WEEK


def test_a_week_hour_without_history_falls_back_to_the_usual_hour_of_day() -> None:
    evenings = list(NOBODY)
    for monday_to_thursday in range(4):  # 11:00 UTC (20:00 in Tokyo), Monday to Thursday
        evenings[monday_to_thursday * 24 + 11] = 3
    friday = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    at = best_instant(evenings, NOBODY, friday, friday + timedelta(days=1), "Asia/Tokyo", 19)
    assert at == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)


# --- caps across campaigns --------------------------------------------------------------------------


def test_a_campaign_counts_once_however_many_phones_it_reached() -> None:
    got = [(("campaign-1", "day"), NOW - timedelta(hours=1))]
    assert may_send(got, ("campaign-1", "day"), NOW, "Asia/Tokyo", 1, 5)  # the member's second phone
    assert not may_send(got, ("campaign-2", "day"), NOW, "Asia/Tokyo", 1, 5)


def test_caps_count_only_the_members_own_day_and_week() -> None:
    # NOW is Tuesday 09:00 in Tokyo; 08:00 UTC on Monday was Monday 17:00 there: an earlier day.
    monday = [(("campaign-1", "day"), datetime(2026, 11, 23, 8, 0, tzinfo=UTC))]
    assert may_send(monday, ("campaign-2", "day"), NOW, "Asia/Tokyo", 1, 2)
    assert not may_send(monday, ("campaign-2", "day"), NOW, "Asia/Tokyo", 1, 1)  # the week's one is used
    last_week = [(("campaign-1", "day"), datetime(2026, 11, 22, 14, 0, tzinfo=UTC))]  # Sunday 23:00 JST
    assert may_send(last_week, ("campaign-2", "day"), NOW, "Asia/Tokyo", 1, 1)


# --- one member's plan ------------------------------------------------------------------------------


def terms(**overrides: object) -> CampaignTerms:
    fields: dict[str, object] = {
        "campaign_id": uuid.UUID(int=7),
        "transactional": False,
        "control_percent": 0,
        "variant_weights": [("A", 1), ("B", 1)],
        "schedule": SendNow(),
        "quiet_hours": None,
        "late": timedelta(hours=1),
        "global_control_percent": 5,
        "fallback_hour": 19,
    }
    return CampaignTerms(**(fields | overrides))  # type: ignore[arg-type]


def plan_for(member: uuid.UUID, campaign: CampaignTerms, slots: list[int]) -> MemberPlan:
    return plan_member(
        campaign,
        member_id=member,
        time_zone="Asia/Tokyo",
        engagement=NOBODY,
        population=NOBODY,
        device_slots=slots,
        occurrence=None,
        now=NOW,
    )


def test_a_member_is_held_back_skipped_or_sent_to_each_phone() -> None:
    members = [uuid.UUID(int=n) for n in range(2000)]
    held = [m for m in members if plan_for(m, terms(), [0]).kind == "control"]
    assert {plan_for(m, terms(), [0]).group for m in held} == {"global_control"}
    assert all(in_global_control(m, 5) for m in held)
    assert plan_for(held[0], terms(transactional=True), [0]).kind == "pending"  # never held back
    sent = next(m for m in members if m not in held)
    assert plan_for(sent, terms(), [0, 2]).device_slots == [0, 2]
    assert plan_for(sent, terms(), []) == MemberPlan(
        "suppressed", plan_for(sent, terms(), [0]).group, "no_address", NOW, None, [None]
    )
    late = terms(schedule=SendAtLocalTime(date=date(2026, 11, 23), time="09:00"))
    assert (plan_for(sent, late, [0]).kind, plan_for(sent, late, [0]).reason) == ("suppressed", "too_late")
    own_control = terms(control_percent=50)
    in_own = [m for m in members if m not in held and plan_for(m, own_control, [0]).group == "control"]
    assert 800 <= len(in_own) <= 1100  # half of those not held back for good


# --- at claim ---------------------------------------------------------------------------------------


def claim(**overrides: object) -> AtClaim:
    fields: dict[str, object] = {
        "campaign_live": True,
        "transactional": False,
        "quiet_hours": None,
        "time_zone": "Asia/Tokyo",
        "latest_at": NOW + timedelta(hours=1),
        "has_address": True,
        "address_reached": False,
        "counted": [],
        "campaign_key": "c1",
        "max_per_day": 1,
        "max_per_week": 5,
        "now": NOW,
    }
    return at_claim(**(fields | overrides))  # type: ignore[arg-type]


def test_a_due_delivery_is_checked_again_when_claimed() -> None:
    assert claim() == AtClaim("send")
    assert claim(campaign_live=False) == AtClaim("cancel", "campaign_cancelled")
    assert claim(latest_at=NOW - timedelta(seconds=1)) == AtClaim("suppress", "too_late")
    assert claim(has_address=False) == AtClaim("suppress", "no_address")
    assert claim(address_reached=True) == AtClaim("suppress", "duplicate_address")
    used = [("c0", NOW - timedelta(hours=1))]
    assert claim(counted=used) == AtClaim("suppress", "cap")
    assert claim(counted=used, transactional=True) == AtClaim("send")
    # NOW is 09:00 in Tokyo: quiet hours until 10:00 move it; quiet hours lasting past its latest skip it.
    morning = QuietHours(start="22:00", end="10:00")
    assert claim(quiet_hours=morning) == AtClaim(
        "wait", "quiet_hours", datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    )
    assert claim(quiet_hours=morning, latest_at=NOW + timedelta(minutes=30)) == AtClaim(
        "suppress", "quiet_hours"
    )
