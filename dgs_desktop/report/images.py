"""The pictures of a report, drawn with Pillow and inlined as data: URIs (no external files).

Only images this program encodes are inlined: the evidence's own bytes (and its embedded
EXIF thumbnail) are re-decoded and re-encoded first, so a hostile file cannot smuggle
anything into the report's viewer.
"""

from __future__ import annotations

import base64
import io
import warnings

from PIL import Image, ImageDraw, ImageFont

from ..detector.patches import PatchSelection
from ..histogram import threshold_bins

THUMBNAIL_SIDE = 256
OVERLAY_SIDE = 480
LOW_ENTROPY_COLOUR = (37, 99, 235)  # blue: smooth patches (as in the window)
HIGH_ENTROPY_COLOUR = (234, 88, 12)  # orange: detailed patches
FAKE_COLOUR, REAL_COLOUR = (220, 38, 38), (22, 163, 74)
MAX_EMBEDDED_THUMBNAIL_PIXELS = 4_000_000


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def encode(image: Image.Image, fmt: str = "PNG") -> str:
    """`image` as a data: URI (PNG keeps exact pixels; JPEG for photos' previews)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=85, optimize=True, subsampling=0)  # crisp outlines
        return data_uri(buffer.getvalue(), "image/jpeg")
    image.save(buffer, "PNG", optimize=True)
    return data_uri(buffer.getvalue(), "image/png")


def scaled(image: Image.Image, side: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return copy


def overlay(image: Image.Image, selection: PatchSelection, side: int = OVERLAY_SIDE) -> Image.Image:
    """The image, scaled to fit `side`, with the 49 selected patches outlined (blue: low
    entropy, orange: high entropy)."""
    factor = side / max(image.width, image.height)  # small images are enlarged, so outlines stay visible
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    resample = Image.Resampling.NEAREST if factor >= 1 else Image.Resampling.LANCZOS
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    preview = rgb.resize(size, resample, reducing_gap=3.0 if factor < 1 else None)
    scale_x, scale_y = preview.width / image.width, preview.height / image.height
    draw = ImageDraw.Draw(preview)
    for (x, y, w, h), low in zip(selection.boxes, selection.low_entropy):
        if w == 0 or h == 0:
            continue  # empty mosaic cell
        colour = LOW_ENTROPY_COLOUR if low else HIGH_ENTROPY_COLOUR
        box = (x * scale_x, y * scale_y, max(x * scale_x + 1, (x + w) * scale_x - 1),
               max(y * scale_y + 1, (y + h) * scale_y - 1))
        draw.rectangle(box, outline=colour, width=2)
    return preview


def reencoded_thumbnail(jpeg: bytes) -> Image.Image | None:
    """An embedded EXIF thumbnail decoded by Pillow (bounded), or None when unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            thumb = Image.open(io.BytesIO(jpeg))
            if thumb.width * thumb.height > MAX_EMBEDDED_THUMBNAIL_PIXELS:
                return None
            thumb.load()
        return scaled(thumb.convert("RGB"), THUMBNAIL_SIDE)
    except Exception:  # noqa: BLE001 - a broken thumbnail is simply not shown
        return None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def histogram(probabilities: list[float], threshold: float, size: tuple[int, int] = (1120, 420)) -> Image.Image:
    """Bar chart of P(fake) in the window's bins (`dgs_desktop.histogram.threshold_bins`: the
    axis spans the scores and the threshold, one bin edge lies on the threshold), so every bar
    is all real (green, left of the dashed threshold line) or all fake (red, right of it)."""
    bins = threshold_bins(probabilities, threshold)
    width, height = size
    left, right, top, bottom = 80, 24, 28, 64
    low, high = bins.edges[0], bins.edges[-1]
    peak = max(bins.counts, default=0) or 1
    chart = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(chart)
    font = _font(22)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(value: float) -> float:
        return left + plot_w * (value - low) / max(high - low, 1e-12)

    draw.line((left, top, left, top + plot_h, left + plot_w, top + plot_h), fill=(80, 80, 80), width=2)
    for i, count in enumerate(bins.counts):
        if count:
            x0, x1 = x_of(bins.edges[i]) + 2, x_of(bins.edges[i + 1]) - 2  # clear of the threshold line
            y0 = top + plot_h * (1 - count / peak)
            colour = FAKE_COLOUR if bins.is_fake_bin(i) else REAL_COLOUR
            draw.rectangle((x0, y0, max(x0, x1), top + plot_h - 1), fill=colour)
    tx = x_of(threshold)
    for y in range(top, top + plot_h, 16):
        draw.line((tx, y, tx, min(y + 8, top + plot_h)), fill=(30, 30, 30), width=3)
    for tick, anchor in ((max(0.0, low), "la"), (min(1.0, high), "ra")):
        x = x_of(tick)
        draw.line((x, top + plot_h, x, top + plot_h + 8), fill=(80, 80, 80), width=2)
        draw.text((x, top + plot_h + 12), f"{tick:.3f}", fill=(40, 40, 40), font=font, anchor=anchor)
    draw.text((left + plot_w / 2, height - 4), "P(fake)", fill=(40, 40, 40), font=font, anchor="md")
    draw.text((left - 10, top), str(peak), fill=(40, 40, 40), font=font, anchor="ra")
    draw.text((left - 10, top + plot_h), "0", fill=(40, 40, 40), font=font, anchor="rb")
    label_left = tx < left + plot_w * 0.75  # the label stays inside the chart beside a threshold at the right end
    draw.text((tx + 8 if label_left else tx - 8, top), f"threshold {threshold:g}", fill=(30, 30, 30), font=font,
              anchor="la" if label_left else "ra")
    return chart
