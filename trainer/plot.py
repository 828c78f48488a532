"""A loss-curve PNG drawn with Pillow (matplotlib is not a dependency)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    ticks: list[float] = []
    value = start
    while value <= hi + 1e-12 and len(ticks) < 20:
        ticks.append(round(value, 10))
        value += step
    return ticks


def plot_panels(path: str | Path, panels: list[tuple[str, dict[str, list[tuple[float, float]]]]],
                size: tuple[int, int] = (900, 360)) -> Path:
    """One row of line charts; each panel is (title, {series name: [(x, y), ...]})."""
    panels = [p for p in panels if any(points for points in p[1].values())] or [("no data", {})]
    width, height = size[0], size[1] * len(panels)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for row, (title, series) in enumerate(panels):
        top = row * size[1]
        left, right, ptop, bottom = 70, width - 170, top + 30, top + size[1] - 40
        draw.text((left, top + 8), title, fill="black", font=font)
        points = [pt for pts in series.values() for pt in pts if math.isfinite(pt[1])]
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = 0.05 * (y1 - y0)
        y0, y1 = y0 - pad, y1 + pad

        def px(x: float, y: float) -> tuple[float, float]:
            return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - ptop))  # noqa: B023 - used at once, in this iteration

        draw.rectangle([left, ptop, right, bottom], outline=(80, 80, 80))
        for tick in _nice_ticks(y0, y1):
            _, ty = px(x0, tick)
            draw.line([left, ty, right, ty], fill=(230, 230, 230))
            draw.text((5, ty - 6), f"{tick:.3g}", fill="black", font=font)
        for tick in _nice_ticks(x0, x1):
            tx, _ = px(tick, y0)
            draw.line([tx, bottom, tx, bottom + 4], fill="black")
            draw.text((tx - 10, bottom + 8), f"{tick:g}", fill="black", font=font)
        draw.text((right - 30, bottom + 22), "step", fill="black", font=font)
        for k, (name, pts) in enumerate(series.items()):
            color = COLORS[k % len(COLORS)]
            coords = [px(x, y) for x, y in pts if math.isfinite(y)]
            if len(coords) == 1:
                cx, cy = coords[0]
                draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=color)
            elif coords:
                draw.line(coords, fill=color, width=2)
            ly = ptop + 10 + 16 * k
            draw.line([right + 12, ly + 6, right + 32, ly + 6], fill=color, width=3)
            draw.text((right + 38, ly), name, fill="black", font=font)
    path = Path(path)
    image.save(path, format="PNG")
    return path
