"""Metadata an analyst reads beside the score: EXIF, XMP, IPTC, PNG text, ICC profile name,
JPEG quantisation tables with the quality they imply, and the embedded EXIF thumbnail.

Everything is read from the bytes the scan already holds and from Pillow's lazily opened
image (headers only, no pixel decode). Metadata comes from outside and may be hostile: XMP is
read by expat with every DTD refused (no entity expansion, no external entity) within a size
and element budget (linear time: a backtracking regular expression once let one crafted PNG
stall a scan for most of a minute), every value is cut to a bounded length, and a part that
cannot be read is noted, never raised.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from dataclasses import dataclass, field
from xml.parsers import expat

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_VALUE_CHARS = 4000  # one metadata value as kept and shown (a ComfyUI workflow can be 100 kB)
MAX_THUMBNAIL_BYTES = 1 << 20
MAX_XMP_BYTES = 1 << 20  # a JPEG XMP segment holds 64 KB; a longer packet (PNG iTXt) is cut here

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


_XMP_CONTAINER_PREFIXES = {"rdf", "x"}  # rdf:Description, x:xmpmeta: their children are the properties
_SKIP_XMP_PREFIXES = {"xmlns", "rdf", "x", "xml", "stEvt", "stRef"}
_NOT_A_PROPERTY_ATTRIBUTE = _SKIP_XMP_PREFIXES | {""}  # unprefixed: rdf:about-like plumbing
_NOT_A_PROPERTY_ELEMENT = _XMP_CONTAINER_PREFIXES | {""}
MAX_XMP_PROPERTIES = 1000  # real packets hold tens; beyond this the panel and the report would drown


class XmpRefused(Exception):
    """A packet this reader will not parse: it declares a DTD (entities, external entities)."""


class XmpStopped(Exception):
    """Reading stopped early: the packet holds more properties than anyone can read."""


def _prefix(name: str) -> str:
    prefix, colon, _ = name.partition(":")
    return prefix if colon else ""


class _Text:
    """Text gathered up to just past MAX_VALUE_CHARS (clip_text then marks the cut)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def add(self, text: str) -> None:
        if self.length <= MAX_VALUE_CHARS:
            self.parts.append(text)
            self.length += len(text)

    def value(self) -> str:
        return "".join(self.parts)


@dataclass
class _OpenProperty:
    name: str
    depth: int
    resource: str  # rdf:resource: a URI value written as an attribute of an empty element
    text: _Text = field(default_factory=_Text)
    items: _Text = field(default_factory=_Text)  # the rdf:li texts so far, "; " between them
    item_count: int = 0
    has_children: bool = False  # a struct or a list: its own text is layout, not a value

    def value(self) -> str:
        if self.item_count:
            return self.items.value()
        text = self.text.value()
        return "" if self.has_children else text if text.strip() else self.resource


@dataclass
class _OpenItem:
    depth: int
    text: _Text = field(default_factory=_Text)
    is_text: bool = True  # an rdf:li holding a struct is not a text item


class _XmpProperties:
    """Expat handlers collecting what the bounded regular expressions before them found:
    every prefixed attribute (outside the rdf/x/xml/stEvt/stRef namespaces), and every
    outermost prefixed element outside rdf:/x: with its text, or its rdf:li text items joined
    with "; " (a struct's inner fields are not listed on their own), or its rdf:resource URI.
    Prefixes are taken as written (no namespace processing), so an undeclared prefix reads."""

    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}
        self.elements: dict[str, str] = {}
        self.depth = 0
        self.property: _OpenProperty | None = None
        self.item: _OpenItem | None = None

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        for key, value in attributes.items():
            if _prefix(key) not in _NOT_A_PROPERTY_ATTRIBUTE and key not in self.attributes:
                self._check_room()
                self.attributes[key] = clip_text(value)
        if self.property is None:
            if _prefix(name) not in _NOT_A_PROPERTY_ELEMENT:
                self.property = _OpenProperty(name, self.depth, attributes.get("rdf:resource", ""))
        elif self.item is not None:
            self.item.is_text = False
        elif name == "rdf:li":
            self.item = _OpenItem(self.depth)
        else:
            self.property.has_children = True

    def text(self, text: str) -> None:
        if self.item is not None:
            if self.item.depth == self.depth:
                self.item.text.add(text)
        elif self.property is not None and self.property.depth == self.depth:
            self.property.text.add(text)

    def end(self, _name: str) -> None:
        if self.item is not None and self.item.depth == self.depth:
            if self.item.is_text and self.property is not None:
                self.property.items.add(("; " if self.property.item_count else "") + self.item.text.value().strip())
                self.property.item_count += 1
            self.item = None
        elif self.property is not None and self.property.depth == self.depth:
            key, value = self.property.name, self.property.value()
            if _prefix(key) not in _SKIP_XMP_PREFIXES and value.strip() and key not in self.elements:
                self._check_room()
                self.elements[key] = clip_text(value)
            self.property = None
        self.depth -= 1

    def _check_room(self) -> None:
        if len(self.attributes) + len(self.elements) >= MAX_XMP_PROPERTIES:
            raise XmpStopped(f"over {MAX_XMP_PROPERTIES:,} properties; the rest are not listed")

    def found(self) -> dict[str, str]:
        """Attributes first, then elements (a name written both ways keeps the attribute)."""
        return self.attributes | {k: v for k, v in self.elements.items() if k not in self.attributes}


def _refuse(what: str):
    def handler(*_args):
        raise XmpRefused(f"it declares {what} (refused: entities are never expanded)")
    return handler


def _xmp_text(packet: bytes | str) -> tuple[str, bool]:
    """The packet as text, at most MAX_XMP_BYTES of it, and whether it was cut."""
    if isinstance(packet, str):
        return packet[:MAX_XMP_BYTES], len(packet) > MAX_XMP_BYTES
    codec = "utf-16" if packet[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return packet[:MAX_XMP_BYTES].decode(codec, "replace"), len(packet) > MAX_XMP_BYTES


def parse_xmp(packet: bytes | str, problems: list[str] | None = None) -> dict[str, str]:
    """Simple XMP properties ("prefix:Name" -> value): attributes, text elements, and the
    items of rdf:Bag/Seq/Alt joined with "; ". Read by expat with every DTD refused (so no
    entity is ever expanded, internal or external), from at most MAX_XMP_BYTES (expat is
    linear: about 0.2 s of CPU for the worst megabyte), at most MAX_XMP_PROPERTIES of them.
    What was read before an XML error is kept, and the reason is appended to `problems`."""
    text, cut = _xmp_text(packet)
    collector = _XmpProperties()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE")
    parser.EntityDeclHandler = _refuse("an entity")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.text
    problem = f"XMP cut at {MAX_XMP_BYTES >> 20} MiB" if cut else ""
    try:
        parser.Parse(text, True)
    except XmpRefused as exc:
        problem = f"XMP not read: {exc}"
    except XmpStopped as exc:
        problem = f"XMP partly read: {exc}"
    except expat.ExpatError as exc:
        problem = problem or f"XMP partly read: {clip_text(exc, 200)}"
    if problem and problems is not None:
        problems.append(problem)
    return collector.found()


_IPTC_NAMES = {(2, 5): "ObjectName", (2, 25): "Keywords", (2, 55): "DateCreated", (2, 60): "TimeCreated",
               (2, 65): "OriginatingProgram", (2, 70): "ProgramVersion", (2, 80): "By-line",
               (2, 90): "City", (2, 101): "Country", (2, 105): "Headline", (2, 110): "Credit",
               (2, 115): "Source", (2, 116): "CopyrightNotice", (2, 120): "Caption-Abstract",
               (2, 122): "Writer-Editor"}


def _iptc_fields(image: Image.Image) -> list[tuple[str, str, str]]:
    from PIL import ImageFile, IptcImagePlugin

    if not isinstance(image, ImageFile.ImageFile):  # an image not read from a file has no IPTC block
        return []
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


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _no_object_repr(exc: Exception) -> str:
    """An exception's message without Python object reprs (e.g. Pillow naming the BytesIO it read)."""
    return _OBJECT_REPR.sub("the file's bytes", str(exc))


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
    except UnidentifiedImageError:  # its message is the repr of our in-memory buffer: say it in words
        meta.problems.append("metadata unreadable: not an image format Pillow can read")
    except Exception as exc:  # noqa: BLE001 - metadata is a side show: never fail the scan for it
        log.debug("metadata unreadable", exc_info=True)
        meta.problems.append(f"metadata unreadable: {type(exc).__name__}: {clip_text(_no_object_repr(exc), 200)}")
    return meta


def _read_all(image: Image.Image, meta: Metadata) -> None:
    info = image.info
    try:
        _exif_fields(image, meta)
    except Exception as exc:  # noqa: BLE001
        meta.problems.append(f"EXIF unreadable: {type(exc).__name__}: {clip_text(exc, 200)}")
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if xmp:
        meta.xmp = parse_xmp(xmp, meta.problems)
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
