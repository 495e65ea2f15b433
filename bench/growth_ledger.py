"""A year of points history for many members at once, written inside PostgreSQL (INSERT ... SELECT).

Every member gets the same shape of history, a pure function of its number and the build's `now`, so
any row can be derived from any other without reading it back:

- PURCHASES sales over the last 364 days, purchase k in the k-th 28-day window (oldest first), each
  of 110-379 yen (so a year's miles stay under the first stage threshold: no stage bonus is due) at one
  of the bench's terminals, earning its points into a lot of its own;
- purchases 2, 4, ..., 12 and the last pay with all the points of the member's first-expiring lot
  (lot k/2, the last one lot 7), as points.ledger.redeem would take them;
- so 13 earn and 7 redeem entries (ENTRIES_PER_MEMBER), 13 lots of which 6 still hold points, the
  account's totals and the miles of each period adding up to them, one device per member, and the
  Idempotency-Keys of the last week's sales (kept 7 days, as the app does).

A simplification, harmless because these sales are never refunded: earning is on the whole total, also
where part of it was paid with points. The SQL follows the program the bench's server runs only where
that program keeps to the rules it assumes (base rate only, a point pays a yen, a mile per yen, ...):
write_history checks them and refuses any other. Bulk rows are written with foreign-key triggers off
(`session_replication_role = replica`): they are consistent by construction, and checking 20 million
references one by one would take most of the build.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg
import msgspec

from bench.hot_path_data import PosTerminal
from points.program import Program
from points.rules.earning import SaleLine, award_for_basket

PURCHASES = 13
REDEEMING = {k: k // 2 for k in range(2, PURCHASES, 2)} | {PURCHASES: 7}  # purchase -> the lot it empties
ENTRIES_PER_MEMBER = PURCHASES + len(REDEEMING)
WINDOW_DAYS = 28
RECEIPT = "'H' || {member_no} || '-' || {k}"  # receipts are unique per store; member numbers are global
KEY_TTL_DAYS = 7  # TSUNAGARI_IDEMPOTENCY_TTL_S's default
SKU, CATEGORY = "4550002", "stationery"  # the one line of every sale
LOWEST_TOTAL, HIGHEST_TOTAL = 110, 379  # what pg_temp.history_total returns


def _unmet_assumptions(program: Program) -> list[str]:
    """The rules the SQL below assumes that `program` does not keep (none: it can write its history)."""
    earning, thresholds = program.earning, program.stages.thresholds
    most_points = HIGHEST_TOTAL * earning.points_per_unit // earning.unit_minor
    holds = {
        "prices in yen": program.currency == "JPY",
        "points spendable at once (pending_days 0)": program.pending_days == 0,
        "lots expiring at a month's end": program.expire_at_month_end,
        "miles periods starting on a month's first day (stages.reset_day 1)": program.stages.reset_day == 1,
        "a mile per yen paid": earning.miles_per_unit == earning.miles_unit_minor,
        "a point paying one yen": earning.point_value_minor == 1,
        f"{CATEGORY} earning": CATEGORY not in earning.non_earning_categories
        and SKU not in earning.non_earning_skus,
        "the base rate on every line (no multiplier or campaign)": not (
            earning.sku_percent or earning.category_percent or earning.store_percent or earning.campaigns
        ),
        "no cap below a sale's points": earning.max_points_per_transaction is None
        or earning.max_points_per_transaction >= most_points,
        "a year's miles under the first stage threshold above 0": len(thresholds) < 2
        or thresholds[1].miles > PURCHASES * HIGHEST_TOTAL,
    }
    return [rule for rule, kept in holds.items() if not kept]


def _applied(program: Program, now: datetime) -> str:
    """The `applied` rules (JSON) of every history sale, as the product's earning rules write them."""
    line = SaleLine(1, SKU, CATEGORY, 1, HIGHEST_TOTAL)
    award = award_for_basket(program.earning, [line], uuid.UUID(int=0), now, 0)
    return msgspec.json.encode(award.applied).decode()


def _functions(program: Program) -> str:
    """The history's SQL functions under `program`; one expression each, which the planner inlines."""
    stage_zone, program_zone = program.stages.time_zone, program.time_zone
    return f"""
CREATE OR REPLACE FUNCTION pg_temp.history_sold_at(now timestamptz, member_no bigint, k int)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now - make_interval(days => ({PURCHASES} - k) * {WINDOW_DAYS},
                               secs => 3600 + (member_no * 2654435761 + k * 40503) % {WINDOW_DAYS * 86400 - 7200})
$$;
CREATE OR REPLACE FUNCTION pg_temp.history_total(member_no bigint, k int)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT {LOWEST_TOTAL} + (member_no * 7919 + k * 104729) % {HIGHEST_TOTAL - LOWEST_TOTAL + 1}
$$;
CREATE OR REPLACE FUNCTION pg_temp.history_points(member_no bigint, k int)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT pg_temp.history_total(member_no, k) * {program.earning.points_per_unit} / {program.earning.unit_minor}
$$;
-- A UUIDv7 (domain.ids) stamped at `at`, its random bits drawn from `seed`: ids are time-ordered and
-- any row's id can be computed again from its member and purchase number.
CREATE OR REPLACE FUNCTION pg_temp.history_id(at timestamptz, seed text)
RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
            || overlay(overlay(substr(md5(seed), 1, 20) PLACING '7' FROM 1 FOR 1) PLACING '8' FROM 5 FOR 1))::uuid
$$;
CREATE OR REPLACE FUNCTION pg_temp.history_expires(at timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT (date_trunc('month', (at + make_interval(days => {program.lifetime_days})) AT TIME ZONE '{program_zone}')
            + interval '1 month') AT TIME ZONE '{program_zone}'
$$;
CREATE OR REPLACE FUNCTION pg_temp.history_period(at timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT make_timestamptz(
        extract(year FROM (at AT TIME ZONE '{stage_zone}') - make_interval(months => {program.stages.reset_month - 1}))::int,
        {program.stages.reset_month}, 1, 0, 0, 0, '{stage_zone}')
$$;
"""  # noqa: S608, E501 - constant SQL (program settings, no input); it reads better unwrapped


_SETUP = """
CREATE TEMP TABLE IF NOT EXISTS history_members (member_no bigint PRIMARY KEY, member_id uuid NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS history_terminals (n int PRIMARY KEY, terminal_id uuid NOT NULL, store_id uuid NOT NULL);
TRUNCATE history_members, history_terminals;
"""  # noqa: E501

_RECEIPT = RECEIPT.format(member_no="h.member_no", k="$2::int")
_PAID_RECEIPT = RECEIPT.format(member_no="member_no", k="paid_k")
_PAID_K = " ".join(f"WHEN {k} THEN {lot}" for k, lot in REDEEMING.items())

# Purchase $2 of every member in history_members: the sale, its lot, its entries, its key; $3 is the
# rules it applied (_applied).
_PURCHASE_K = f"""
WITH sale AS MATERIALIZED (
    SELECT h.member_no, h.member_id, t.terminal_id, t.store_id, {_RECEIPT} AS receipt_id,
           pg_temp.history_sold_at($1, h.member_no, $2::int) AS sold_at,
           pg_temp.history_total(h.member_no, $2::int) AS total,
           pg_temp.history_points(h.member_no, $2::int) AS points,
           CASE $2::int {_PAID_K} END AS paid_k
    FROM history_members h JOIN history_terminals t ON t.n = (h.member_no + $2::int) % (SELECT count(*) FROM history_terminals)
), bought AS MATERIALIZED (
    SELECT sale.*,
           pg_temp.history_id(sold_at, 'purchase' || receipt_id) AS purchase_id,
           pg_temp.history_id(sold_at, 'lot' || receipt_id) AS lot_id,
           pg_temp.history_id(sold_at, 'earn' || receipt_id) AS earn_id,
           pg_temp.history_id(sold_at, 'redeem' || receipt_id) AS redeem_id,
           coalesce(pg_temp.history_points(member_no, paid_k), 0) AS redeemed,
           pg_temp.history_id(pg_temp.history_sold_at($1, member_no, paid_k), 'lot' || {_PAID_RECEIPT}) AS paid_lot_id,
           pg_temp.history_expires(pg_temp.history_sold_at($1, member_no, paid_k)) AS paid_lot_expires_at,
           $3::jsonb AS applied
    FROM sale
), purchases_written AS (
    INSERT INTO purchases (id, store_id, terminal_id, receipt_id, member_id, sold_at, posted_at, currency,
        total_minor, lines, points_redeemed, points_earned, miles_earned, award, refunded_minor,
        points_reversed, miles_reversed, points_returned)
    SELECT purchase_id, store_id, terminal_id, receipt_id, member_id, sold_at, sold_at + interval '2 seconds',
        'JPY', total,
        jsonb_build_array(jsonb_build_object(
            'sku', '{SKU}', 'line_no', 1, 'category', '{CATEGORY}', 'quantity', 1, 'points_paid', redeemed,
            'miles_earned', total, 'points_earned', points, 'discount_minor', 0, 'miles_reversed', 0,
            'refunded_minor', 0, 'points_returned', 0, 'points_reversed', 0, 'unit_price_minor', total,
            'refunded_quantity', 0, 'money_returned_minor', 0, 'paid_with_points_minor', redeemed)),
        redeemed, points, total,
        jsonb_build_object(
            'lines', jsonb_build_array(jsonb_build_object(
                'miles', total, 'points', points, 'line_no', 1, 'points_paid', redeemed,
                'earning_minor', total, 'paid_with_points_minor', redeemed)),
            'miles', total, 'points', points, 'applied', applied, 'earning_minor', total,
            'paid_with_points_minor', redeemed),
        0, 0, 0, 0
    FROM bought ORDER BY purchase_id
), lots_written AS (
    INSERT INTO point_lots (id, member_id, purchase_id, source, earned_at, available_at, expires_at, amount, remaining)
    SELECT lot_id, member_id, purchase_id, 'earn', sold_at, sold_at, pg_temp.history_expires(sold_at), -- pending_days 0
           points, CASE WHEN $2::int <= {max(REDEEMING.values())} THEN 0 ELSE points END
    FROM bought ORDER BY lot_id
), entries_written AS (
    INSERT INTO point_entries (id, member_id, kind, points, owed_change, miles, lot_id, purchase_id, refund_id,
        reason, occurred_at, recorded_at, details)
    SELECT * FROM (
        SELECT earn_id, member_id, 'earn'::point_entry_kind, points, 0, total, lot_id, purchase_id, NULL::uuid,
               'Purchase (receipt ' || receipt_id || ')', sold_at, sold_at + interval '2 seconds',
               jsonb_build_object('applied', applied)
        FROM bought
        UNION ALL
        SELECT redeem_id, member_id, 'redeem', -redeemed, 0, 0, NULL, purchase_id, NULL,
               'Paid at the register (receipt ' || receipt_id || ')', sold_at, sold_at + interval '2 seconds',
               jsonb_build_object('lots', jsonb_build_array(jsonb_build_object(
                   'lot_id', paid_lot_id, 'points', redeemed, 'expires_at', paid_lot_expires_at)))
        FROM bought WHERE paid_k IS NOT NULL
    ) AS entry ORDER BY 1
), keys_written AS (
    INSERT INTO idempotency_keys (scope, key, request_digest, status_code, response_body, created_at, expires_at)
    SELECT 'pos:' || terminal_id, 'history-' || receipt_id, sha256(convert_to(receipt_id, 'UTF8')), 201,
           convert_to(jsonb_build_object('purchase_id', purchase_id, 'receipt_id', receipt_id,
                                         'points_earned', points, 'miles_earned', total)::text, 'UTF8'),
           sold_at + interval '2 seconds', sold_at + interval '2 seconds' + make_interval(days => {KEY_TTL_DAYS})
    FROM bought WHERE sold_at + make_interval(days => {KEY_TTL_DAYS}) > $1
)
SELECT count(*) FROM bought
"""  # noqa: S608, E501 - constant SQL; values are bound

_PURCHASE_NUMBERS = f"generate_series(1, {PURCHASES}) AS k"
_ACCOUNTS = f"""
INSERT INTO point_accounts AS account
    (member_id, lifetime_earned, lifetime_redeemed, lifetime_expired, owed, updated_at)
SELECT h.member_id, sum(pg_temp.history_points(h.member_no, k)),
       sum(pg_temp.history_points(h.member_no, k)) FILTER (WHERE k IN ({", ".join(map(str, REDEEMING.values()))})),
       0, 0, $1
FROM history_members h CROSS JOIN {_PURCHASE_NUMBERS}
GROUP BY h.member_id ORDER BY h.member_id
ON CONFLICT (member_id) DO UPDATE SET
    lifetime_earned = account.lifetime_earned + excluded.lifetime_earned,
    lifetime_redeemed = account.lifetime_redeemed + excluded.lifetime_redeemed
"""  # noqa: S608, E501 - constant SQL; values are bound
_MILES = f"""
INSERT INTO member_miles AS period (member_id, period_start, miles, bonus_stages)
SELECT h.member_id, pg_temp.history_period(pg_temp.history_sold_at($1, h.member_no, k)),
       sum(pg_temp.history_total(h.member_no, k)), '{{}}'
FROM history_members h CROSS JOIN {_PURCHASE_NUMBERS}
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (member_id, period_start) DO UPDATE SET miles = period.miles + excluded.miles
"""  # noqa: S608 - constant SQL; values are bound
_DEVICES = """
INSERT INTO member_devices (member_id, slot, secret_salt, created_at)
SELECT member_id, 0, decode(md5('device' || member_no), 'hex'), $1 FROM history_members ORDER BY member_id
ON CONFLICT DO NOTHING
"""


async def write_history(
    connection: asyncpg.Connection,
    program: Program,
    members: Sequence[tuple[int, uuid.UUID]],
    terminals: Sequence[PosTerminal],
    now: datetime,
    progress: Callable[[str], None],
) -> None:
    """The history above under `program` for `members` (number, id; numbers unique across calls), on
    `terminals`."""
    unmet = _unmet_assumptions(program)
    if unmet:
        raise SystemExit(f"the history SQL (bench.growth_ledger) assumes a program with {'; '.join(unmet)}")
    await connection.execute(_functions(program) + _SETUP)
    await connection.copy_records_to_table("history_members", records=members)
    await connection.copy_records_to_table(
        "history_terminals", records=[(n, t.id, t.store_id) for n, t in enumerate(terminals)]
    )
    await connection.execute("ANALYZE history_members")
    applied = _applied(program, now)
    await connection.execute("SET session_replication_role = replica")
    try:
        for k in range(1, PURCHASES + 1):
            await connection.fetchval(_PURCHASE_K, now, k, applied)
            progress(f"purchase {k}/{PURCHASES} of {len(members):,} members")
        for statement in (_ACCOUNTS, _MILES, _DEVICES):
            await connection.execute(statement, now)
    finally:
        await connection.execute("RESET session_replication_role")
