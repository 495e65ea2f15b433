"""Line charts as standalone SVG text: readable on a laptop screen, printable, no script, no CDN."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

import msgspec

PALETTE = ("#0b6e4f", "#c0392b", "#2c3e50", "#d68910", "#6c3483")


class Series(msgspec.Struct, frozen=True):
    name: str
    points: list[tuple[float, float]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / (count - 1) if high > low else 1.0
    return [low + step * i for i in range(count)]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 720,
    height: int = 400,
    x_format: Callable[[float], str] = lambda x: f"{x:,.0f}",
) -> str:
    left, right, top, bottom = 70, 180, 40, 50
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points] or [0.0, 1.0]
    x_low, x_high = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_low, y_high = min(0.0, min(ys)), max(ys) * 1.1 if max(ys) > 0 else 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / (x_high - x_low) * plot_w,
            top + plot_h - (y - y_low) / (y_high - y_low) * plot_h,
        )

    parts = _opening(title, width, height, left)
    for y in _ticks(y_low, y_high):
        _, py = at(x_low, y)
        parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in _ticks(x_low, x_high):
        px, _ = at(x, y_low)
        label = escape(x_format(x))
        parts.append(f'<text x="{px:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>')
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text transform="translate(16 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in one.points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        legend_y = top + 20 * index + 10
        parts.append(
            f'<line x1="{width - right + 15}" y1="{legend_y}" x2="{width - right + 40}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="3"/>'
            f'<text x="{width - right + 46}" y="{legend_y + 4}">{escape(one.name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _opening(title: str, width: int, height: int, left: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    width: int = 720,
    row_height: int = 26,
) -> str:
    """Horizontal bars, one labelled row each, with the value written at the bar's end."""
    left, right, top = 150, 90, 40
    height = top + row_height * max(len(bars), 1) + 16
    high = max((value for _, value in bars), default=0.0) or 1.0
    plot_w = width - left - right
    parts = _opening(title, width, height, 10)
    for index, (label, value) in enumerate(bars):
        y = top + index * row_height
        length = max(value, 0.0) / high * plot_w
        parts.append(
            f'<text x="{left - 8}" y="{y + row_height * 0.65:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{length:.1f}" height="{row_height - 8}" '
            f'fill="{PALETTE[index % len(PALETTE)]}"/>'
            f'<text x="{left + length + 6:.1f}" y="{y + row_height * 0.65:.1f}">'
            f"{escape(value_format(value))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


class Interval(msgspec.Struct, frozen=True):
    label: str
    estimate: float | None
    low: float | None
    high: float | None


def interval_chart(
    rows: Sequence[Interval],
    *,
    title: str,
    x_label: str,
    reference: float = 0.0,
    value_format: Callable[[float], str] = lambda v: f"{v:+.0%}",
    width: int = 720,
    row_height: int = 34,
) -> str:
    """Estimates with their intervals (e.g. lift against control), and a line at `reference` (no effect).

    A row without an estimate says so instead of drawing a point that is not known yet.
    """
    left, right, top, bottom = 150, 40, 40, 40
    height = top + row_height * max(len(rows), 1) + bottom
    known = [v for r in rows for v in (r.low, r.high, r.estimate) if v is not None] + [reference]
    low, high = min(known), max(known)
    pad = (high - low) * 0.1 or 0.5
    low, high = low - pad, high + pad
    plot_w = width - left - right

    def at(value: float) -> float:
        return left + (value - low) / (high - low) * plot_w

    parts = _opening(title, width, height, 10)
    bottom_y = top + row_height * max(len(rows), 1)
    parts.append(
        f'<line x1="{at(reference):.1f}" y1="{top}" x2="{at(reference):.1f}" y2="{bottom_y}" '
        f'stroke="#999" stroke-dasharray="4 3"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">{escape(x_label)}</text>'
    )
    for tick in _ticks(low, high):
        parts.append(
            f'<text x="{at(tick):.1f}" y="{bottom_y + 16}" text-anchor="middle">'
            f"{escape(value_format(tick))}</text>"
        )
    for index, row in enumerate(rows):
        y = top + index * row_height + row_height / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(row.label)}</text>')
        if row.estimate is None:
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" fill="#777">not enough data yet</text>')
            continue
        if row.low is not None and row.high is not None:
            parts.append(
                f'<line x1="{at(row.low):.1f}" y1="{y:.1f}" x2="{at(row.high):.1f}" y2="{y:.1f}" '
                f'stroke="{PALETTE[0]}" stroke-width="3"/>'
            )
        parts.append(
            f'<circle cx="{at(row.estimate):.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[1]}"/>'
            f'<text x="{at(row.estimate):.1f}" y="{y - 9:.1f}" text-anchor="middle">'
            f"{escape(value_format(row.estimate))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
