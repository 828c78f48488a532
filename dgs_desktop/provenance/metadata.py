"""Metadata an analyst reads beside the score: EXIF, XMP, IPTC, PNG text, ICC profile name,
JPEG quantisation tables with the quality they imply, and the embedded EXIF thumbnail.

Everything is read from the bytes the scan already holds and from Pillow's lazily opened
image (headers only, no pixel decode). Metadata comes from outside and may be hostile: XMP is
scanned with bounded regular expressions instead of an XML parser (no entity expansion), every
value is cut to a bounded length, and a part that cannot be read is noted, never raised.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image

log = logging.getLogger(__name__)

MAX_VALUE_CHARS = 4000  # one metadata value as kept and shown (a ComfyUI workflow can be 100 kB)
MAX_THUMBNAIL_BYTES = 1 << 20
MAX_XMP_BYTES = 4 << 20

# The IJG (libjpeg) base tables, natural (row-major) order; quality q scales them (jcparam.c).
_IJG_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


@dataclass
class Metadata:
    """What one file says about itself. `fields` is the full list for the panel and the
    report: (group, name, value) with groups EXIF, GPS, XMP, IPTC, PNG, ICC, JPEG, File."""

    format: str = ""
    fields: list[tuple[str, str, str]] = field(default_factory=list)
    png_text: dict[str, str] = field(default_factory=dict)  # full text chunks (bounded), for fingerprints
    xmp: dict[str, str] = field(default_factory=dict)  # "prefix:Name" -> value
    camera: str = ""
    lens: str = ""
    software: str = ""
    date_taken: str = ""
    gps: tuple[float, float] | None = None  # (latitude, longitude) in decimal degrees
    icc_profile: str = ""
    jpeg_quality: int | None = None  # estimated from the luminance quantisation table
    jpeg_qtables: dict[int, list[int]] = field(default_factory=dict)
    thumbnail: bytes = b""  # embedded EXIF thumbnail (JPEG), empty when none
    exif_user_comment: str = ""
    problems: list[str] = field(default_factory=list)

    def get(self, group: str, name: str) -> str:
        return next((value for g, n, value in self.fields if g == group and n == name), "")


def clip_text(value, limit: int = MAX_VALUE_CHARS) -> str:
    """A metadata value as bounded, printable text (control characters become spaces)."""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    elif isinstance(value, tuple | list):
        value = ", ".join(clip_text(v, 200) for v in value[:64])
    else:
        value = str(value)
    value = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", value).strip()
    return value if len(value) <= limit else value[:limit] + " …"


def _ijg_tables() -> np.ndarray:
    """(100, 64) luminance tables libjpeg writes for quality 1..100 (jcparam.c scaling)."""
    base = np.array(_IJG_LUMINANCE, dtype=np.int64)
    tables = []
    for quality in range(1, 101):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        tables.append(np.clip((base * scale + 50) // 100, 1, 255))
    return np.stack(tables)


_IJG_TABLES = _ijg_tables()


def estimate_jpeg_quality(luminance_table) -> int | None:
    """The IJG quality 1-100 whose scaled luminance table is closest to `luminance_table`
    (natural order, 64 values); None when it matches no IJG table well (custom tables:
    cameras, Photoshop), since a quality number would then mislead."""
    table = np.asarray(list(luminance_table), dtype=np.int64)
    if table.shape != (64,):
        return None
    errors = np.abs(_IJG_TABLES - table).sum(axis=1)
    best = int(errors.argmin())
    return best + 1 if errors[best] <= 64 else None


def _ratio(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        numerator, denominator = value
        return float(numerator) / float(denominator)


def gps_degrees(gps: dict) -> tuple[float, float] | None:
    """(lat, lon) from an EXIF GPS IFD (tags 1-4), or None when absent or malformed."""
    try:
        lat = sum(_ratio(part) / 60 ** i for i, part in enumerate(gps[2][:3]))
        lon = sum(_ratio(part) / 60 ** i for i, part in enumerate(gps[4][:3]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if str(gps.get(1, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(3, "E")).upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 6), round(lon, 6)


def icc_profile_name(profile: bytes) -> str:
    """The 'desc' tag of an ICC profile (v2 textDescription or v4 multiLocalizedUnicode)."""
    if not profile or len(profile) < 132:
        return ""
    (count,) = struct.unpack(">I", profile[128:132])
    for i in range(min(count, 256)):
        entry = 132 + 12 * i
        if entry + 12 > len(profile):
            break
        signature, offset, size = struct.unpack(">4sII", profile[entry:entry + 12])
        if signature != b"desc":
            continue
        data = profile[offset:offset + min(size, 4096)]
        if data[:4] == b"desc" and len(data) >= 12:
            (length,) = struct.unpack(">I", data[8:12])
            return clip_text(data[12:12 + max(0, length - 1)].decode("latin-1"), 200)
        if data[:4] == b"mluc" and len(data) >= 28:
            record_size = struct.unpack(">I", data[12:16])[0]
            if record_size >= 12:
                text_length, text_offset = struct.unpack(">II", data[20:28])
                return clip_text(data[text_offset:text_offset + text_length].decode("utf-16-be", "replace"), 200)
        return ""
    return ""


_XMP_ATTRIBUTE = re.compile(r'\b([A-Za-z][\w.-]{0,40}):([A-Za-z][\w.-]{0,80})\s*=\s*"([^"]{0,4000})"')
# Containers (rdf:, x:) are not matched, so the properties inside them are found.
_XMP_ELEMENT = re.compile(r"<(?!rdf:|x:)([A-Za-z][\w.-]{0,40}):([A-Za-z][\w.-]{0,80})(?:\s[^<>]{0,2000})?>(.{0,20000}?)</\1:\2>",
                          re.S)
_XMP_LI = re.compile(r"<rdf:li(?:\s[^<>]{0,2000})?>([^<]{0,4000})</rdf:li>")
_XML_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}
_SKIP_XMP_PREFIXES = {"xmlns", "rdf", "x", "xml", "stEvt", "stRef"}


def _xml_unescape(text: str) -> str:
    text = re.sub(r"&(lt|gt|quot|apos|amp);", lambda m: _XML_ENTITIES[m.group(0)], text)
    return re.sub(r"&#(x[0-9A-Fa-f]{1,6}|\d{1,7});",
                  lambda m: chr(min(int(m.group(1)[1:], 16) if m.group(1)[0] == "x" else int(m.group(1)), 0x10FFFF)),
                  text)


def parse_xmp(packet: bytes | str) -> dict[str, str]:
    """Simple XMP properties ("prefix:Name" -> value): attributes, text elements, and the
    items of rdf:Bag/Seq/Alt joined with "; ". Regular expressions, never an XML parser."""
    text = packet if isinstance(packet, str) else packet[:MAX_XMP_BYTES].decode("utf-8", "replace")
    properties: dict[str, str] = {}
    for prefix, name, value in _XMP_ATTRIBUTE.findall(text):
        if prefix not in _SKIP_XMP_PREFIXES:
            properties.setdefault(f"{prefix}:{name}", clip_text(_xml_unescape(value)))
    for prefix, name, body in _XMP_ELEMENT.findall(text):
        if prefix in _SKIP_XMP_PREFIXES:
            continue
        items = _XMP_LI.findall(body)
        value = "; ".join(i.strip() for i in items) if items else ("" if "<" in body else body)
        if value.strip():
            properties.setdefault(f"{prefix}:{name}", clip_text(_xml_unescape(value)))
    return properties


_IPTC_NAMES = {(2, 5): "ObjectName", (2, 25): "Keywords", (2, 55): "DateCreated", (2, 60): "TimeCreated",
               (2, 65): "OriginatingProgram", (2, 70): "ProgramVersion", (2, 80): "By-line",
               (2, 90): "City", (2, 101): "Country", (2, 105): "Headline", (2, 110): "Credit",
               (2, 115): "Source", (2, 116): "CopyrightNotice", (2, 120): "Caption-Abstract",
               (2, 122): "Writer-Editor"}


def _iptc_fields(image: Image.Image) -> list[tuple[str, str, str]]:
    from PIL import IptcImagePlugin

    try:
        iptc = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception:  # noqa: BLE001 - a damaged IPTC block is reported as absent
        return []
    out = []
    for key, value in sorted(iptc.items())[:200]:
        name = _IPTC_NAMES.get(key, f"{key[0]}:{key[1]}")
        out.append(("IPTC", name, clip_text(value if not isinstance(value, list) else b"; ".join(value))))
    return out


def _exif_text(value) -> str:
    """EXIF UserComment: an 8-byte character-code header, then the text (UTF-16 for UNICODE,
    byte order guessed from the first character since writers disagree)."""
    if isinstance(value, bytes) and len(value) >= 8:
        header, body = value[:8], value[8:]
        if header == b"UNICODE\x00":
            codec = "utf-16-le" if body[1:2] == b"\x00" and body[:1] != b"\x00" else "utf-16-be"
            return clip_text(body.decode(codec, "replace"))
        if header in (b"ASCII\x00\x00\x00", b"\x00" * 8):
            return clip_text(body)
    return clip_text(value)


def _exif_fields(image: Image.Image, meta: Metadata) -> None:
    exif = image.getexif()
    if not exif:
        return
    groups = [("EXIF", dict(exif), ExifTags.TAGS)]
    for ifd, group, names in ((ExifTags.IFD.Exif, "EXIF", ExifTags.TAGS), (ExifTags.IFD.GPSInfo, "GPS", ExifTags.GPSTAGS)):
        try:
            groups.append((group, dict(exif.get_ifd(ifd)), names))
        except Exception as exc:  # noqa: BLE001 - one broken IFD must not hide the others
            meta.problems.append(f"EXIF {group} block unreadable: {clip_text(exc, 200)}")
    for group, tags, names in groups:
        for tag, value in sorted(tags.items(), key=lambda item: item[0]):
            if tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, 0x927C, 0x02BC, 0x8773):  # pointers, blobs
                continue
            name = names.get(tag, f"0x{tag:04X}")
            text = _exif_text(value) if name == "UserComment" else clip_text(value)
            meta.fields.append((group, name, text))
            if name == "UserComment":
                meta.exif_user_comment = text
        if group == "GPS" and tags:
            meta.gps = gps_degrees(tags)
    make, model = meta.get("EXIF", "Make"), meta.get("EXIF", "Model")
    meta.camera = model if make and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p)
    meta.lens = " ".join(p for p in (meta.get("EXIF", "LensMake"), meta.get("EXIF", "LensModel")) if p)
    meta.software = meta.get("EXIF", "Software")
    meta.date_taken = meta.get("EXIF", "DateTimeOriginal") or meta.get("EXIF", "DateTime")
    meta.thumbnail = _exif_thumbnail(image, exif)


def _exif_thumbnail(image: Image.Image, exif) -> bytes:
    """The JPEG thumbnail in EXIF IFD1 (offset/length tags 0x0201/0x0202), when present."""
    raw = image.info.get("exif")
    if not isinstance(raw, bytes | bytearray):
        return b""
    tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    try:
        ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
    except Exception:  # noqa: BLE001 - an absent or broken IFD1 simply has no thumbnail
        return b""
    offset, length = ifd1.get(0x0201), ifd1.get(0x0202)
    if not isinstance(offset, int) or not isinstance(length, int) or not 0 < length <= MAX_THUMBNAIL_BYTES:
        return b""
    data = bytes(tiff[offset:offset + length])
    return data if data.startswith(b"\xff\xd8") else b""


def read_metadata(data: bytes, image: Image.Image | None = None) -> Metadata:
    """Metadata of the file whose bytes are `data`; `image` is Pillow's opened (not yet
    converted) image of those bytes when the caller has one, else it is opened here from the
    bytes (headers only). Never raises for bad metadata: problems are listed instead."""
    meta = Metadata()
    try:
        # Pillow warns about corrupt EXIF and large images (the scan checks sizes itself). Not
        # recorded: catch_warnings(record=True) swaps a process-wide hook, unsafe in scan threads.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if image is None:
                image = Image.open(io.BytesIO(data))
            meta.format = image.format or ""
            _read_all(image, meta)
    except Exception as exc:  # noqa: BLE001 - metadata is a side show: never fail the scan for it
        log.debug("metadata unreadable", exc_info=True)
        meta.problems.append(f"metadata unreadable: {type(exc).__name__}: {clip_text(exc, 200)}")
    return meta


def _read_all(image: Image.Image, meta: Metadata) -> None:
    info = image.info
    try:
        _exif_fields(image, meta)
    except Exception as exc:  # noqa: BLE001
        meta.problems.append(f"EXIF unreadable: {type(exc).__name__}: {clip_text(exc, 200)}")
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if xmp:
        meta.xmp = parse_xmp(xmp)
        meta.fields.extend(("XMP", key, value) for key, value in sorted(meta.xmp.items()))
        meta.software = meta.software or meta.xmp.get("xmp:CreatorTool", "")
        meta.date_taken = meta.date_taken or meta.xmp.get("photoshop:DateCreated", "") or meta.xmp.get(
            "xmp:CreateDate", "")
    if meta.format in ("JPEG", "MPO", "TIFF"):
        meta.fields.extend(_iptc_fields(image))
    if meta.format == "PNG":
        for key, value in list(getattr(image, "text", info).items())[:200]:
            if key in ("XML:com.adobe.xmp", "icc_profile", "exif") or not isinstance(value, str | bytes):
                continue
            meta.png_text[clip_text(key, 80)] = clip_text(value, 200_000)
            meta.fields.append(("PNG", clip_text(key, 80), clip_text(value)))
    icc = info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        meta.icc_profile = icc_profile_name(icc) or "(unnamed profile)"
        meta.fields.append(("ICC", "ProfileDescription", meta.icc_profile))
    tables = getattr(image, "quantization", None)
    if meta.format in ("JPEG", "MPO") and tables:
        meta.jpeg_qtables = {int(k): list(v) for k, v in tables.items()}
        meta.jpeg_quality = estimate_jpeg_quality(meta.jpeg_qtables.get(0, []))
        quality = "custom tables (not IJG)" if meta.jpeg_quality is None else f"~{meta.jpeg_quality} (IJG scale)"
        meta.fields.append(("JPEG", "EstimatedQuality", quality))
        for index, table in sorted(meta.jpeg_qtables.items()):
            meta.fields.append(("JPEG", f"QuantizationTable{index}", " ".join(map(str, table))))
    if meta.thumbnail:
        meta.fields.append(("EXIF", "EmbeddedThumbnail", f"JPEG, {len(meta.thumbnail):,} bytes"))
    if meta.gps:
        meta.fields.append(("GPS", "Position", f"{meta.gps[0]:.6f}, {meta.gps[1]:.6f}"))
