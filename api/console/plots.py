"""The console's plots, drawn on the server as SVG (infra.charts) from what the use cases return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup

from infra.charts import Interval, Series, bar_chart, interval_chart, line_chart


def _day(x: float) -> str:
    return date.fromordinal(round(x)).strftime("%m-%d")


def daily_chart(title: str, y_label: str, series: dict[str, Sequence[tuple[date, int]]]) -> Markup:
    """One line per named series of (day, value); days on the x axis."""
    lines = [
        Series(name=name, points=[(day.toordinal(), float(value)) for day, value in points])
        for name, points in series.items()
    ]
    # The chart escapes every text it draws, so its SVG is safe to place in the page as it is.
    return Markup(line_chart(lines, title=title, x_label="day", y_label=y_label, x_format=_day))  # noqa: S704


def bars(title: str, rows: Sequence[tuple[str, float]], percent: bool = False) -> Markup:
    fmt = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:,.0f}")
    return Markup(bar_chart(rows, title=title, value_format=fmt))  # noqa: S704


def intervals(title: str, x_label: str, rows: Sequence[Interval]) -> Markup:
    return Markup(interval_chart(rows, title=title, x_label=x_label))  # noqa: S704
