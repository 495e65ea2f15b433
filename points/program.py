"""The loyalty program's settings: currency, earning rules, stages, lot dates, code policy.

Configured with `TSUNAGARI_POINTS_PROGRAM` (JSON of `Program`; omitted fields keep their defaults).
Lot dates are fixed when points are earned, from the sale time, so later policy changes are never
retroactive and a late posting keeps the dates its sale would have had.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from points.rules.earning import EarningPolicy
from points.rules.stages import StagePolicy


class Program(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    currency: str = "JPY"
    time_zone: str = "Asia/Tokyo"
    pending_days: int = 0  # earned points become spendable this many days after the sale
    lifetime_days: int = 365  # and expire this many days after the sale ...
    expire_at_month_end: bool = True  # ... moved to the end of that month (program time zone)
    late_posting_max_days: int = 30  # oldest sale a POS may still post
    allow_static_card_numbers: bool = False  # the printed card number without a rotating code
    earning: EarningPolicy = EarningPolicy()
    stages: StagePolicy = StagePolicy()

    def available_at(self, sold_at: datetime) -> datetime:
        return sold_at + timedelta(days=self.pending_days)

    def expires_at(self, sold_at: datetime) -> datetime:
        """The instant lots earned at `sold_at` stop being spendable (exclusive)."""
        end = sold_at + timedelta(days=self.lifetime_days)
        if not self.expire_at_month_end:
            return end
        local = end.astimezone(ZoneInfo(self.time_zone))
        next_month = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
        return next_month.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def load_program(text: str | None) -> Program:
    """Program from its JSON text; ValueError names the bad field."""
    if not text:
        return Program()
    try:
        return msgspec.json.decode(text, type=Program)
    except msgspec.ValidationError as error:
        raise ValueError(f"TSUNAGARI_POINTS_PROGRAM: {error}") from error
