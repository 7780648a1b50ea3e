"""The report's SVG charts: well-formed markup, escaped text, scales that hold for any values."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from giellm_batch.monitoring.charts import bar_chart, line_chart


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed markup (an unescaped "<" or "&" in a label)


def test_bars_scale_to_the_largest_value_and_escape_labels():
    svg = bar_chart("件数 <top>", ["東京都", "a<b & c", "ゼロ"], [40.0, 10.0, 0.0])
    root = _parse(svg)
    bars = [float(r.get("width")) for r in root.iter("rect")]
    assert bars[0] > 0 and abs(bars[1] - bars[0] / 4) < 0.2 and bars[2] == 0
    texts = [t.text for t in root.iter("text")]
    assert "件数 <top>" in texts and "a<b & c" in texts and "40" in texts


def test_bar_chart_of_nothing_or_only_zeros_is_still_valid():
    assert "nothing in this run" in bar_chart("none", [], [])
    root = _parse(bar_chart("zeros", ["x", "y"], [0.0, 0.0]))
    assert [float(r.get("width")) for r in root.iter("rect")] == [0.0, 0.0]


def test_lines_leave_gaps_for_missing_values_and_stay_inside_the_plot():
    svg = line_chart("trend", ["r1", "r2", "r3", "r4", "r5"],
                     {"ok": [1.0, None, 0.5, 0.25, float("nan")], "bad": [0.0, 0.0, 0.0, 0.0, 0.0]})
    root = _parse(svg)
    lines = list(root.iter("polyline"))
    # "ok": the None splits it, so only r3-r4 is a line (r1 stands alone); "bad": one line
    assert len(lines) == 2
    height = float(root.get("height"))
    for line in lines:
        for point in line.get("points").split():
            x, y = map(float, point.split(","))
            assert 0 <= x <= float(root.get("width")) and 0 <= y <= height
    assert len(list(root.iter("circle"))) == 3 + 5


def test_line_chart_needs_two_points():
    assert "needs two runs" in line_chart("t", ["only"], {"a": [1.0]})
