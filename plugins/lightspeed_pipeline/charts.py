"""Small bar charts as inline SVG, drawn on the server.

The health page must work in offline deployments and inside Airflow's iframe, so it loads no
script, font or stylesheet from anywhere: each chart is a few <rect> elements with a <title>
(the browser's own tooltip) per bar. Slots are fixed, so the charts of one page line up run
by run; a slot with no value (the entity did not run) is drawn as a short grey tick.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

GREEN = "#16a34a"  # Airflow's success
RED = "#dc2626"  # failed
GREY = "#a1a1aa"  # not run


@dataclass(frozen=True)
class Bar:
    value: float | None  # None: nothing to draw (not run)
    title: str  # tooltip
    color: str = GREEN


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def bar_chart(
    bars: Sequence[Bar],
    *,
    slots: int,
    width: int = 150,
    height: int = 28,
    label: str,
    show_max: bool = False,
    css_class: str = "chart",
) -> str:
    """Bars right-aligned in `slots` equal slots (the newest run is the rightmost)."""
    bars = list(bars)[-slots:] if slots else []
    gap = 1
    pad_top = 10 if show_max else 1
    slot_w = width / max(slots, 1)
    bar_w = max(slot_w - gap, 1)
    peak = max((b.value for b in bars if b.value is not None), default=0.0) or 1.0
    offset = slots - len(bars)
    parts = [
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">'
        f"<title>{html.escape(label)}</title>"
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" class="axis"/>'
    ]
    usable = height - pad_top - 1
    for i, b in enumerate(bars):
        x = (offset + i) * slot_w
        if b.value is None:
            h, color = 2.0, GREY
        else:  # a zero is a 1 px tick in the bar's colour: the run is there, with nothing to show
            h = max(usable * (b.value / peak), 2.0) if b.value else 1.0
            color = b.color
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 1 - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}"'
            f' data-value="{"" if b.value is None else b.value}"><title>{html.escape(b.title)}</title></rect>'
        )
    if show_max and bars:
        parts.append(f'<text x="0" y="8" class="peak">max {html.escape(_fmt(peak))}</text>')
    parts.append("</svg>")
    return "".join(parts)
