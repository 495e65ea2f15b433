"""How the console prints numbers, money, rates and times (Jinja filters)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment


def grouped(value: int | float) -> str:
    """1234567 → 1,234,567 (points, counts)."""
    return f"{value:,.0f}"


def yen(amount_minor: int) -> str:
    return f"¥{amount_minor:,}"


def percent(share: float | None, digits: int = 1) -> str:
    return "-" if share is None else f"{share * 100:.{digits}f}%"


def local(moment: datetime | None, time_zone: str) -> str:
    """A stored UTC instant on the retailer's clock, to the minute."""
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M")


def install(environment: Environment) -> None:
    environment.filters.update(grouped=grouped, yen=yen, percent=percent, local=local)
