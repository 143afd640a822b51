"""Charts drawn in plain HTML and CSS: lines over time and a timeline of spans (no plotting library).

A saved notebook opens untrusted, and JupyterLab's sanitizer then strips SVG
(inline or ``image/svg+xml``) and every ``<style>``; it keeps ``<div>`` with
inline styles whose values it can check: sizes in ``%``/``px``, positions,
flex layout, colours as hex or ``rgba``.  So each mark here is a ``<div>``
placed with ``left``/``bottom`` percentages and filled with a hex colour,
and text inherits the theme's colour (``var(--jp-...)`` values would be
stripped).  Marks carry the class ``llmgine-mark`` and each chart
``llmgine-chart``, so tests can find them; hover titles give exact values.
A chart ends with ``CHART_END`` so that nbval can replace it whole (its
positions depend on the clock).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .style import NO_MATH, esc, fmt_cost

__all__ = ["PALETTE", "CHART_END", "Span", "line_chart", "timeline", "nice_ticks", "tick_labels", "value_label"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
CHART_END = "<!--/llmgine-chart-->"
_GRID = "rgba(128,128,128,.28)"
_BAND = "rgba(128,128,128,.09)"
_FONT = "font-size:11px;line-height:1.3"
_MUTED = "opacity:.72"
#: Points drawn per series at most: a long session's line keeps its shape, the page stays small.
MAX_POINTS = 240


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
        ticks.append(round(value, 12))
        value += step
    return ticks


def _number(value: float, decimals: int) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.{max(decimals, 1)}f}M"
    if abs(value) >= 1000:
        return f"{value / 1000:.{decimals}f}k"
    return f"{value:.{decimals}f}"


def tick_labels(ticks: Sequence[float], money: bool = False) -> list[str]:
    """Labels for axis ticks with as many decimals as it takes for no two to read the same."""
    for decimals in range(0, 9):
        if money:
            labels = [f"${t:,.{max(decimals, 2)}f}" for t in ticks]
        else:
            labels = [_number(t, decimals) for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def value_label(value: float, money: bool = False) -> str:
    """A value as a hover title shows it: costs as everywhere (``fmt_cost``: $0.000042), tokens whole."""
    return fmt_cost(value) if money else f"{value:,.0f}"


def _pct(value: float) -> str:
    return f"{min(max(value, 0.0), 100.0):.2f}%"


def _mark(style: str, title: str = "", colour: str = "") -> str:
    tip = f' title="{esc(title)}"' if title else ""
    return f'<div class="llmgine-mark"{tip} style="position:absolute;{style};background-color:{colour}"></div>'


def _legend(items: Sequence[tuple[str, str]], indent: str = "0") -> str:
    """Swatches with full names that wrap onto more lines rather than being cut."""
    entries = "".join(
        f'<span style="display:inline-flex;align-items:center;gap:4px">'
        f'<span class="llmgine-mark" style="display:inline-block;width:10px;height:10px;border-radius:2px;'
        f'background-color:{colour}"></span>{esc(name)}</span>'
        for name, colour in items
    )
    return f'<div style="display:flex;flex-wrap:wrap;gap:2px 14px;margin:6px 0 0 {indent}">{entries}</div>'


def _chart(title: str, body: str, width: int) -> str:
    return (f'<div class="llmgine-chart {NO_MATH}" title="{esc(title)}" style="display:inline-block;'
            f'vertical-align:top;width:{width}px;max-width:100%;{_FONT};margin:4px 0">{body}</div>{CHART_END}')


def _thin(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """At most ``MAX_POINTS`` of a cumulative series, evenly spread, the last one kept."""
    if len(points) <= MAX_POINTS:
        return list(points)
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    return kept + [points[-1]]


def line_chart(
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    title: str,
    money: bool = False,
    width: int = 460,
    height: int = 140,
) -> str:
    """Step lines of cumulative values over time, one per series (e.g. tokens per model)."""
    head = f'<div style="font-weight:600;margin-bottom:6px">{esc(title)}</div>'
    points = [p for values in series.values() for p in values]
    if not points:
        return _chart(title, head + f'<div style="{_MUTED}">nothing recorded yet</div>', width)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    span = max(t1 - t0, 0.001)
    y_max = max(p[1] for p in points) or 1.0
    ticks = nice_ticks(0, y_max)
    y_top = max(ticks[-1], y_max)

    def x(t: datetime) -> float:
        return (t.timestamp() - t0) / span * 100

    def y(v: float) -> float:
        return v / y_top * 100

    axis = "".join(
        f'<div style="position:absolute;right:6px;bottom:{_pct(y(t))};margin-bottom:-7px;{_MUTED};'
        f'white-space:nowrap">{esc(label)}</div>'
        for t, label in zip(ticks, tick_labels(ticks, money))
    )
    marks = [f'<div style="position:absolute;left:0;width:100%;bottom:{_pct(y(t))};height:0;'
             f'border-top:1px solid {_GRID}"></div>' for t in ticks]
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        previous_x, previous = 0.0, 0.0
        for when, value in _thin(sorted(values)):
            at = x(when)
            if at > previous_x:
                marks.append(_mark(f"left:{_pct(previous_x)};width:{_pct(at - previous_x)};bottom:{_pct(y(previous))};"
                                   "height:2px", colour=colour))
            if value > previous:
                marks.append(_mark(f"left:{_pct(at)};width:2px;bottom:{_pct(y(previous))};"
                                   f"height:{_pct(y(value) - y(previous))}", colour=colour))
            marks.append(_mark(f"left:{_pct(at)};bottom:{_pct(y(value))};width:5px;height:5px;margin-left:-2px;"
                               "margin-bottom:-2px;border-radius:3px",
                               f"{name} · {when.astimezone():%H:%M:%S} · {value_label(value, money)}", colour))
            previous_x, previous = at, value
        if previous_x < 100:
            marks.append(_mark(f"left:{_pct(previous_x)};width:{_pct(100 - previous_x)};bottom:{_pct(y(previous))};"
                               "height:2px", colour=colour))
    start, end = datetime.fromtimestamp(t0), datetime.fromtimestamp(t1)
    fmt = "%H:%M:%S" if start.date() == end.date() else "%b %d %H:%M"
    end_label = f"{end:{fmt}}" if f"{end:{fmt}}" != f"{start:{fmt}}" else f"+{_seconds(t1 - t0)}"
    body = (
        head
        + f'<div style="display:flex;height:{height}px;margin-top:8px">'
        + f'<div style="position:relative;width:58px;flex:none">{axis}</div>'
        + f'<div style="position:relative;flex:1;border-left:1px solid {_GRID};border-bottom:1px solid {_GRID}">'
        + "".join(marks) + "</div></div>"
        + f'<div style="display:flex;justify-content:space-between;margin-left:58px;{_MUTED}">'
        + f"<span>{start:{fmt}}</span><span>{end_label}</span></div>"
        + _legend([(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)], "58px")
    )
    return _chart(title, body, width)


@dataclass(frozen=True)
class Span:
    """One bar of a timeline: a turn, a model call, a tool run, a wait for approval."""

    row: str
    start: datetime
    end: datetime
    kind: str  # turn | model | tool | approval
    label: str = ""
    status: str = "ok"  # ok | failed | stopped (a turn stopped, an approval denied)


_KIND_COLOUR = {"turn": "#4e79a7", "model": "#59a14f", "tool": "#f28e2b", "approval": "#edc948"}
_KIND_NAME = {"turn": "turn", "model": "model call", "tool": "tool run", "approval": "approval wait"}
_STATUS_COLOUR = {"failed": "#e15759", "stopped": "#9e9e9e"}
_STATUS_NAME = {"failed": "failed", "stopped": "stopped or denied"}
_KIND_ORDER = {kind: i for i, kind in enumerate(_KIND_COLOUR)}


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def timeline(spans: Sequence[Span], *, width: int = 720, row_height: int = 22, label_width: int = 170) -> str:
    """Horizontal bars on a shared time axis, one row per span (failed in red, stopped in grey)."""
    title = "Timeline"
    if not spans:
        return _chart(title, f'<div style="{_MUTED}">no turns recorded yet</div>', width)
    # Turns on top, then model calls, tools and approvals, each in order of first start.
    first: dict[str, tuple[int, datetime]] = {}
    for span in spans:
        key = (_KIND_ORDER.get(span.kind, len(_KIND_ORDER)), span.start)
        first[span.row] = min(first.get(span.row, key), key)
    rows = sorted(first, key=lambda row: first[row])
    t0 = min(s.start for s in spans).timestamp()
    total = max(max(s.end for s in spans).timestamp() - t0, 0.001)
    bars: dict[str, list[str]] = {row: [] for row in rows}
    for span in spans:
        left = (span.start.timestamp() - t0) / total * 100
        size = (span.end - span.start).total_seconds() / total * 100
        colour = _STATUS_COLOUR.get(span.status) or _KIND_COLOUR.get(span.kind, "#9c755f")
        tip = f"{span.label or span.row} · {_seconds((span.end - span.start).total_seconds())}"
        if span.status != "ok":
            tip += f" · {span.status}"
        bars[span.row].append(_mark(f"left:{_pct(left)};width:{_pct(size)};min-width:2px;top:4px;"
                                    f"height:{row_height - 8}px;border-radius:3px", tip, colour))
    lines = []
    for index, row in enumerate(rows):
        band = f"background-color:{_BAND};" if index % 2 == 0 else ""
        lines.append(
            f'<div style="display:flex;height:{row_height}px;{band}">'
            f'<div title="{esc(row)}" style="width:{label_width}px;flex:none;overflow:hidden;white-space:nowrap;'
            f'text-overflow:ellipsis;padding:4px 6px 0;box-sizing:border-box">{esc(row)}</div>'
            f'<div style="position:relative;flex:1;margin-right:8px">{"".join(bars[row])}</div></div>'
        )
    ticks = "".join(f"<span>{_seconds(total * f) if total >= 0.001 else ''}</span>" for f in (0, 0.25, 0.5, 0.75, 1))
    legend = [(_KIND_NAME[k], c) for k, c in _KIND_COLOUR.items()] + [
        (_STATUS_NAME[s], c) for s, c in _STATUS_COLOUR.items()]
    body = (
        "".join(lines)
        + f'<div style="display:flex;justify-content:space-between;margin:3px 8px 0 {label_width}px;{_MUTED}">'
        + f"{ticks}</div>" + _legend(legend, f"{label_width}px")
    )
    return _chart(title, body, width)
