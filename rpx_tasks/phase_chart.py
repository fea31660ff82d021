"""``phase_scores.png`` of a run folder, drawn with Pillow: the primary metric's mean per phase, one bar per
difficulty, the WPS of each phase under its name.

Every ``rpx bench`` writes this chart, so it is drawn with Pillow (already loaded to decode frames) in a few
milliseconds rather than with matplotlib, whose import alone costs ~0.5 s per run. It follows the shared style
(``rpx_tasks.chart_style``): 1200 x 700 pixels, a title, axis labels with the unit and direction, a legend, and
series told apart by grey level and hatching. The file is written atomically (temp name + rename).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rpx_tasks.chart_style import CHART_HEIGHT_PX, CHART_WIDTH_PX, GREYS, HATCHES, metric_label
from rpx_tasks.comparison.loading import read_per_sample
from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.readiness.phase_cells import ordered
from rpx_tasks.reports import PHASE_SCORES_FILE, write_bytes_atomic

GRID_GREY = 225
MAX_DRAWN = 1e300  # bars beyond it are drawn at it (a mean that absurd still gets a chart, not an error)
MAX_LABEL_CHARS = 40  # legend entries are cut to this
HATCH_SPACING_PX = 9
BAR_GROUP_WIDTH = 0.8  # of the space of one phase


@dataclass(frozen=True)
class PlotArea:
    """The rectangle of the bars, in pixels, and the value range its height spans."""

    left: int
    top: int
    right: int
    bottom: int
    low: float
    high: float

    def y(self, value: float) -> float:
        """The pixel row of ``value``."""
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)


def phase_means(columns: dict[str, np.ndarray], metric: str) -> dict[tuple[str, str], float]:
    """Return the mean of ``metric`` per (phase, difficulty) over the rows that hold a finite value."""
    values = columns[metric]
    means = {}
    for phase in set(columns["phase"].tolist()):
        for level in set(columns["difficulty"].tolist()):
            rows = (columns["phase"] == phase) & (columns["difficulty"] == level) & np.isfinite(values)
            if rows.any():
                means[(phase, level)] = float(values[rows].mean())
    return means


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering [low, high]; ``[low, high]``
    itself where that range is empty or not finite."""
    raw = (high - low) / target
    if not (math.isfinite(raw) and raw > 0.0):
        return [low, high] if high > low else [low]
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if power * m >= raw)
    first = math.floor(low / step + 1e-9)
    count = int(math.ceil(high / step - first - 1e-9))
    digits = max(0, 2 - math.floor(math.log10(step)))  # a digit or two below the step: no 0.30000000000000004
    return [round((first + i) * step, digits) for i in range(count + 1)]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _grey(level: str) -> int:
    return round(float(level) * 255)


def _hatched_bar(width: int, height: int, grey: int, hatch: str) -> Image.Image:
    """A bar of ``grey`` with ``hatch`` ('//', '\\\\', 'xx', '..' or none) in black, as matplotlib draws them."""
    bar = Image.new("L", (width, height), grey)
    draw = ImageDraw.Draw(bar)
    step = HATCH_SPACING_PX
    if "/" in hatch or "x" in hatch:
        for offset in range(-height, width + height, step):
            draw.line([(offset, height), (offset + height, 0)], fill=0, width=1)
    if "\\" in hatch or "x" in hatch:
        for offset in range(-height, width + height, step):
            draw.line([(offset, 0), (offset + height, height)], fill=0, width=1)
    if "." in hatch:
        for y in range(step // 2, height, step):
            for x in range(step // 2, width, step):
                draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=0)
    return bar


def _paste_bar(image: Image.Image, series_index: int, left: int, top: int, width: int, height: int) -> None:
    """Paste the bar of series ``series_index`` (its grey level and hatch) with a black outline at (left, top)."""
    bar = _hatched_bar(width, height, _grey(GREYS[series_index % len(GREYS)]), HATCHES[series_index % len(HATCHES)])
    image.paste(bar, (left, top))
    ImageDraw.Draw(image).rectangle([left, top, left + width - 1, top + height - 1], outline=0)


def _drawable(value: float) -> float:
    """``value`` clipped to +-``MAX_DRAWN`` (NaN stays NaN: no bar), so the axis arithmetic stays finite."""
    return max(-MAX_DRAWN, min(MAX_DRAWN, value)) if math.isfinite(value) else math.nan


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 3] + "..."


def _value_range(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    if high - low < 1e-12:
        high = low + 1.0
    margin = 0.08 * (high - low)
    return (low - margin if low < 0 else low), high + margin


def _format_tick(value: float) -> str:
    return f"{value:.6g}"


def _text_centred(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, font: Any) -> None:
    width = draw.textlength(text, font=font)
    draw.text((x - width / 2, y), text, fill=0, font=font)


def draw_grouped_bars(
    groups: list[tuple[str, str]],
    series: list[str],
    values: dict[tuple[str, str], float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    legend_title: str,
) -> Image.Image:
    """Draw one bar per (group, series) value (missing or NaN: none drawn), grouped by ``groups`` ((name,
    second label line) pairs), one grey level and hatch per series, with a legend; returns the image."""
    values = {key: _drawable(value) for key, value in values.items()}
    series_labels = [_label(name) for name in series]
    image = Image.new("L", (CHART_WIDTH_PX, CHART_HEIGHT_PX), 255)
    draw = ImageDraw.Draw(image)
    title_font, label_font, tick_font = _font(20), _font(16), _font(14)
    low, high = _value_range(list(values.values()))
    ticks = [t for t in nice_ticks(low, high) if low - 1e-12 <= t <= high + 1e-12]
    tick_width = max((draw.textlength(_format_tick(t), font=tick_font) for t in ticks), default=0)
    legend_width = _legend_width(draw, series_labels, _label(legend_title), tick_font)
    area = PlotArea(
        left=int(70 + tick_width),
        top=60,
        right=CHART_WIDTH_PX - 30 - (legend_width + 20 if legend_width else 0),  # the legend stays outside the bars
        bottom=CHART_HEIGHT_PX - 120,
        low=low,
        high=high,
    )

    _text_centred(draw, CHART_WIDTH_PX / 2, 18, title, title_font)
    for tick in ticks:
        y = area.y(tick)
        draw.line([(area.left, y), (area.right, y)], fill=GRID_GREY)
        label = _format_tick(tick)
        draw.text((area.left - 8 - draw.textlength(label, font=tick_font), y - 8), label, fill=0, font=tick_font)
    rotated = Image.new("L", (int(draw.textlength(y_label, font=label_font)) + 4, 22), 255)
    ImageDraw.Draw(rotated).text((2, 0), y_label, fill=0, font=label_font)
    rotated = rotated.rotate(90, expand=True)
    image.paste(rotated, (12, int((area.top + area.bottom) / 2 - rotated.height / 2)))

    slot = (area.right - area.left) / max(len(groups), 1)
    bar_width = slot * BAR_GROUP_WIDTH / max(len(series), 1)
    zero = area.y(0.0)
    for g_index, (name, second_line) in enumerate(groups):
        centre = area.left + slot * (g_index + 0.5)
        for s_index, level in enumerate(series):
            value = values.get((name, level), math.nan)
            if not math.isfinite(value):
                continue
            left = round(centre - slot * BAR_GROUP_WIDTH / 2 + bar_width * s_index)
            top, bottom = sorted((area.y(value), zero))
            _paste_bar(image, s_index, left, round(top), max(round(bar_width), 1), max(round(bottom - top), 1))
        _text_centred(draw, centre, area.bottom + 8, name, tick_font)
        if second_line:
            _text_centred(draw, centre, area.bottom + 28, second_line, tick_font)
    draw.line([(area.left, zero), (area.right, zero)], fill=0)
    draw.rectangle([area.left, area.top, area.right, area.bottom], outline=0)
    _text_centred(draw, (area.left + area.right) / 2, CHART_HEIGHT_PX - 50, x_label, label_font)
    _draw_legend(draw, image, area, series_labels, _label(legend_title), tick_font)
    return image


def _legend_width(draw: ImageDraw.ImageDraw, series: list[str], title: str, font: Any) -> int:
    if not series:
        return 0
    return int(max(draw.textlength(text, font=font) for text in [title, *series])) + 60


def _draw_legend(
    draw: ImageDraw.ImageDraw, image: Image.Image, area: PlotArea, series: list[str], title: str, font: Any
) -> None:
    """The legend, right of the plot area, at its top."""
    if not series:
        return
    width = _legend_width(draw, series, title, font)
    height = 28 + 24 * len(series)
    x0, y0 = area.right + 20, area.top
    draw.rectangle([x0, y0, x0 + width, y0 + height], fill=255, outline=0)
    _text_centred(draw, x0 + width / 2, y0 + 5, title, font)
    for index, name in enumerate(series):
        y = y0 + 28 + 24 * index
        _paste_bar(image, index, x0 + 10, y, 30, 16)
        draw.text((x0 + 48, y), name, fill=0, font=font)


def write_phase_scores(folder: Path, payload: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``phase_scores.png`` (or ``path``) for the run in ``folder`` whose result.json is ``payload``: the
    primary metric's mean per phase, one bar per difficulty, the WPS per phase in the phase labels. Returns the
    PNG's path. Raises ConfigError when the per-sample rows cannot be read, OSError when the PNG cannot be
    written."""
    metric = payload["primary_metric"]
    higher = (payload["aggregated"].get(metric) or {}).get("higher_is_better")
    columns = read_per_sample(folder, [metric])
    means = phase_means(columns, metric) if metric in columns else {}
    phases = ordered([phase for phase, _ in means], PHASES) or list(PHASES)
    levels = ordered([level for _, level in means], SPLITS)
    wps = (payload.get("readiness") or {}).get("wps") or {}

    def wps_line(phase: str) -> str:
        score = wps.get(f"s_{phase}")
        return f"WPS {score:.4f}" if isinstance(score, (int, float)) else ""

    overall = wps.get("s_overall")
    overall_text = f", WPS overall {overall:.4f}" if isinstance(overall, (int, float)) else ""
    image = draw_grouped_bars(
        [(phase, wps_line(phase)) for phase in phases],
        levels,
        means,
        title=f"{payload.get('task')} - {payload.get('model')} on {payload.get('split')}: {metric} per phase"
        f"{overall_text}",
        x_label="phase (WPS: the phase's score, ESD-weighted over difficulties)",
        y_label=metric_label(metric, higher),
        legend_title="difficulty",
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_bytes_atomic(path or folder / PHASE_SCORES_FILE, buffer.getvalue())


__all__ = ["draw_grouped_bars", "nice_ticks", "phase_means", "write_phase_scores"]
