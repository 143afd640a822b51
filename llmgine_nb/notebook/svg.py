"""Small inline SVG charts: lines over time and a timeline of spans (no plotting library).

Both return an ``<svg>`` string that renders in any notebook frontend; hover
titles give exact values.  Text colours follow JupyterLab's theme variables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..text import clip
from .style import esc

__all__ = ["PALETTE", "Span", "line_chart", "timeline", "nice_ticks"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_TEXT = "var(--jp-ui-font-color1, #333)"
_MUTED = "var(--jp-ui-font-color2, #777)"
_GRID = "var(--jp-border-color2, #e3e3e3)"
_FONT = "font-family:var(--jp-ui-font-family, system-ui, sans-serif);font-size:11px"


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round tick values covering ``low``..``high``."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=magnitude * 10)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.001:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt_number(value: float, money: bool = False) -> str:
    if money:
        return f"${value:.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}"


def line_chart(
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    title: str,
    money: bool = False,
    width: int = 560,
    height: int = 200,
) -> str:
    """Step lines of cumulative values over time, one per series (e.g. tokens per model)."""
    points = [p for values in series.values() for p in values]
    left, right, top, bottom = 58, 16, 26, 44
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'style="{_FONT};max-width:100%">',
        f'<text x="{left}" y="16" fill="{_TEXT}" style="font-weight:600">{esc(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{left}" y="{top + inner_h / 2}" fill="{_MUTED}">nothing recorded yet</text></svg>')
        return "".join(parts)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    if t1 - t0 < 1:
        t1 = t0 + 1
    y_max = max(p[1] for p in points) or 1.0
    ticks = nice_ticks(0, y_max)
    y_top = max(ticks[-1], y_max)

    def x(t: datetime) -> float:
        return left + (t.timestamp() - t0) / (t1 - t0) * inner_w

    def y(v: float) -> float:
        return top + inner_h - v / y_top * inner_h

    for tick in ticks:
        parts.append(f'<line x1="{left}" x2="{left + inner_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{_MUTED}">'
                     f"{esc(_fmt_number(tick, money))}</text>")
    start, end = datetime.fromtimestamp(t0), datetime.fromtimestamp(t1)
    same_day = start.date() == end.date()
    fmt = "%H:%M:%S" if same_day else "%b %d %H:%M"
    parts.append(f'<text x="{left}" y="{top + inner_h + 16}" fill="{_MUTED}">{start.strftime(fmt)}</text>')
    parts.append(f'<text x="{left + inner_w}" y="{top + inner_h + 16}" text-anchor="end" fill="{_MUTED}">'
                 f"{end.strftime(fmt)}</text>")
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        ordered = sorted(values)
        if not ordered:
            continue
        path = [f"M{x(ordered[0][0]):.1f},{y(0):.1f}"]
        previous = 0.0
        for when, value in ordered:
            path.append(f"L{x(when):.1f},{y(previous):.1f}L{x(when):.1f},{y(value):.1f}")
            previous = value
        path.append(f"L{left + inner_w:.1f},{y(previous):.1f}")
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2">'
                     f"<title>{esc(name)}: {esc(_fmt_number(previous, money))}</title></path>")
        for when, value in ordered:
            parts.append(f'<circle cx="{x(when):.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{esc(name)} · {when.astimezone().strftime("%H:%M:%S")} · '
                         f"{esc(_fmt_number(value, money))}</title></circle>")
        # legend below the axis
        lx = left + index * 170
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 5}" fill="{_TEXT}">{esc(clip(name, 24))}</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Span:
    """One bar of a timeline: a turn, a model call, a tool run, a wait for approval."""

    row: str
    start: datetime
    end: datetime
    kind: str  # turn | model | tool | approval
    label: str = ""
    ok: bool = True


_KIND_COLOUR = {"turn": "#4e79a7", "model": "#59a14f", "tool": "#f28e2b", "approval": "#edc948"}
_KIND_ORDER = {kind: i for i, kind in enumerate(_KIND_COLOUR)}


def timeline(spans: Sequence[Span], *, width: int = 720, row_height: int = 22) -> str:
    """Horizontal bars on a shared time axis, one row per span (failed spans in red)."""
    # Turns on top, then model calls, tools and approvals, each in order of first start.
    first: dict[str, tuple[int, datetime]] = {}
    for span in spans:
        key = (_KIND_ORDER.get(span.kind, len(_KIND_ORDER)), span.start)
        first[span.row] = min(first.get(span.row, key), key)
    rows = sorted(first, key=lambda row: first[row])
    left, right, top = 170, 16, 10
    height = top + len(rows) * row_height + 30
    inner_w = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" style="{_FONT};max-width:100%">']
    if not spans:
        parts.append(f'<text x="10" y="20" fill="{_MUTED}">no turns recorded yet</text></svg>')
        return "".join(parts)
    t0 = min(s.start for s in spans).timestamp()
    t1 = max(s.end for s in spans).timestamp()
    total = max(t1 - t0, 0.001)

    def x(t: datetime) -> float:
        return left + (t.timestamp() - t0) / total * inner_w

    for index, row in enumerate(rows):
        y = top + index * row_height
        if index % 2 == 0:
            parts.append(f'<rect x="0" y="{y}" width="{width}" height="{row_height}" fill="{_GRID}" opacity="0.35"/>')
        parts.append(f'<text x="6" y="{y + row_height - 7}" fill="{_TEXT}">{esc(clip(row, 26))}</text>')
    for span in spans:
        y = top + rows.index(span.row) * row_height + 4
        x0 = x(span.start)
        w = max(x(span.end) - x0, 2.0)
        colour = _KIND_COLOUR.get(span.kind, "#9c755f") if span.ok else "#e15759"
        seconds = (span.end - span.start).total_seconds()
        tip = f"{span.label or span.row} · {seconds * 1000:.0f} ms" if seconds < 1 else f"{span.label or span.row} · {seconds:.2f} s"
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{row_height - 8}" rx="3" fill="{colour}">'
                     f"<title>{esc(tip)}</title></rect>")
    axis_y = top + len(rows) * row_height + 14
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        seconds = total * fraction
        label = f"{seconds * 1000:.0f} ms" if total < 2 else f"{seconds:.1f} s"
        anchor = "start" if fraction == 0 else "end" if fraction == 1 else "middle"
        parts.append(f'<text x="{left + inner_w * fraction:.1f}" y="{axis_y}" text-anchor="{anchor}" '
                     f'fill="{_MUTED}">{label}</text>')
    legend_y = axis_y + 12
    for i, (kind, colour) in enumerate(_KIND_COLOUR.items()):
        lx = left + i * 100
        parts.append(f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{legend_y}" fill="{_TEXT}">{kind}</text>')
    parts[0] = parts[0].replace(f'height="{height}"', f'height="{height + 14}"').replace(
        f"0 0 {width} {height}", f"0 0 {width} {height + 14}")
    parts.append("</svg>")
    return "".join(parts)
