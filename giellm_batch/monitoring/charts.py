"""Inline SVG charts for the run report: horizontal bars and lines, as markup strings.

Why not matplotlib: drawing the report's ten-odd PNG plots costs most of a second of every run,
and importing it another second or two in each new process; SVG text is also rendered by the
browser in whatever Japanese font the reader has, so no font ships with us. The markup needs no
script, no namespace URL (inline SVG in HTML5) and no external resource: the page stays a single
offline file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2")
WIDTH = 700
_ROW = 20  # px per bar
_MAX_LABEL_CHARS = 40


def _text_width(text: str, size: float = 12.0) -> float:
    """Rough rendered width: CJK and full-width characters take a full em, the rest ~0.6 em."""
    return sum(size if ord(ch) >= 0x2E80 else 0.6 * size for ch in text)


def _label(text: str) -> str:
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def empty(title: str, why: str) -> str:
    return f"<p class=empty>{html.escape(title)}: {html.escape(why)}</p>"


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], color: str = PALETTE[0]) -> str:
    """One horizontal bar per label, longest scale at the largest value, each bar's value at its end."""
    if not labels:
        return empty(title, "nothing in this run.")
    shown = [_label(str(label)) for label in labels]
    left = min(320.0, max(_text_width(label) for label in shown) + 12)
    span = WIDTH - left - 70
    top = max(values, default=0.0) or 1.0
    height = 30 + _ROW * len(shown) + 8
    parts = [f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>']
    for i, (label, value) in enumerate(zip(shown, values, strict=True)):
        y = 28 + i * _ROW
        bar = max(0.0, span * float(value) / top)
        parts.append(f'<text x="{left - 6:.1f}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>'
                     f'<rect x="{left:.1f}" y="{y + 2}" width="{bar:.1f}" height="{_ROW - 5}" fill="{color}">'
                     f"<title>{html.escape(label)}: {_number(float(value))}</title></rect>"
                     f'<text x="{left + bar + 4:.1f}" y="{y + 13}">{_number(float(value))}</text>')
    return _svg(height, parts, title)


def line_chart(title: str, x: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    """One line per series over the `x` labels (a None leaves a gap), y from 0 to the largest value."""
    if len(x) < 2:
        return empty(title, f"needs two runs or days; {len(x)} so far.")
    height, left, right, top_pad, bottom = 260, 56, 130, 28, 64
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    finite = [float(v) for ys in series.values() for v in ys if v is not None and math.isfinite(float(v))]
    top = max(finite, default=0.0) or 1.0

    def px(i: int) -> float:
        return left + plot_w * i / (len(x) - 1)

    def py(v: float) -> float:
        return top_pad + plot_h * (1 - v / top)

    parts = [f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + plot_w}" y2="{py(0):.1f}" stroke="#888"/>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{py(0):.1f}" stroke="#888"/>']
    for tick in (0.0, top / 2, top):
        parts.append(f'<text x="{left - 4}" y="{py(tick) + 4:.1f}" text-anchor="end">{_number(round(tick, 3))}</text>')
    step = max(1, len(x) // 8)
    for i in range(0, len(x), step):
        label = html.escape(_label(str(x[i])))
        parts.append(f'<text x="{px(i):.1f}" y="{py(0) + 14:.1f}" text-anchor="end" font-size="10" '
                     f'transform="rotate(-30 {px(i):.1f} {py(0) + 14:.1f})">{label}</text>')
    for n, (name, ys) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        points: list[tuple[float, float]] = []
        segment: list[str] = []
        for i, v in enumerate(ys):  # a gap (None, NaN) ends a segment
            if v is None or not math.isfinite(float(v)):
                parts.extend(_polyline(segment, color))
                segment = []
            else:
                points.append((px(i), py(float(v))))
                segment.append(f"{points[-1][0]:.1f},{points[-1][1]:.1f}")
        parts.extend(_polyline(segment, color))
        parts.extend(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>' for cx, cy in points)
        ly = top_pad + 6 + 18 * n
        parts.append(f'<rect x="{WIDTH - right + 12}" y="{ly}" width="12" height="12" fill="{color}"/>'
                     f'<text x="{WIDTH - right + 30}" y="{ly + 11}">{html.escape(str(name))}</text>')
    return _svg(height, parts, title)


def _polyline(points: list[str], color: str) -> list[str]:
    if len(points) < 2:
        return []
    return [f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>']


def _svg(height: float, parts: list[str], title: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-size="12" '
            f'font-family="sans-serif">{"".join(parts)}</svg>')
