"""Small line charts as inline SVG, drawn on the server: no script, no outside request.

For the admin's host page; dashboards draw their own from the series API.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 150
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 10, 22
COLOURS = ("#2f6fb0", "#c0504d", "#4f9a4f", "#8064a2")


def _number(value: float) -> str:
    """A short label: 12, 3.4, 1.2k, 5.6M, 7.8G."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if abs(value) >= 10 or value == 0 else f"{value:.1f}"


def line_chart(
    *,
    times: list[datetime],
    lines: dict[str, list[float | None]],
    start: datetime,
    end: datetime,
    unit: str,
    y_max: float | None = None,
) -> SafeString:
    """An SVG chart of ``lines`` over [start, end]; a gap where a value is missing."""
    if not times:
        return SafeString('<p class="help">No samples in this period.</p>')
    top = y_max if y_max is not None else max((v for vs in lines.values() for v in vs if v is not None), default=0)
    top = top or 1.0
    span = (end - start).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + plot_w * (moment - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, top) / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" style="font: 11px sans-serif; background: #fff">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{escape(_number(top))} {escape(unit)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{escape(start.strftime("%Y-%m-%d %H:%M"))} UTC</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{escape(end.strftime("%H:%M"))}</text>',
    ]
    for index, (label, values) in enumerate(lines.items()):
        colour = COLOURS[index % len(COLOURS)]
        path, pen_down = [], False
        for moment, value in zip(times, values, strict=True):
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(moment):.1f},{y(value):.1f}")
            pen_down = True
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(f'<text x="{LEFT + 8 + 110 * index}" y="{TOP + 10}" fill="{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    # Every interpolated text above is escaped; the numbers are formatted floats.
    return mark_safe("".join(parts))
