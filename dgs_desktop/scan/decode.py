"""Safe image decoding with Pillow: one read of the file, sha256 of exactly those bytes,
RGB conversion for every mode, a pixel limit against decompression bombs, EXIF orientation.

Never writes anything; the file is opened read-only once.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..envknobs import int_knob
from .discover import SUFFIX_FORMATS
from .memory import decoded_bytes_estimate

# Keeping freed blocks around instead of returning them to the OS after each image roughly
# doubles decode throughput (measured: ~88 -> ~210 1 MP JPEGs/s on one core).
Image.core.set_blocks_max(int_knob("PILLOW_BLOCKS_MAX", 64, minimum=0))

Reserve = Callable[[int], None]
_ROTATIONS = frozenset(range(2, 9))  # EXIF orientations 2-8 need a transpose; others are invalid
# How pixels become the RGB image that is scored. ANALYST (the app's default): EXIF orientation
# applied, 16-bit and float images scaled to 8 bits by their range. AUTHORS: the authors' code,
# `Image.open(path).convert("RGB")` (HorizonTEL/DGS-Net): no rotation, Pillow's conversion, which
# saturates 16-bit values above 255; for reproducing the paper's tables.
ANALYST, AUTHORS = "analyst", "authors"
DECODINGS = (ANALYST, AUTHORS)
DEFAULT_MAX_PIXELS = 150_000_000  # ~12k x 12k; beyond that a file is treated as a bomb
MAX_FILE_BYTES = 1 << 30

try:  # HEIC/HEIF (phone photos) through pillow-heif; Pillow >= 11 decodes AVIF itself
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a dependency; without it HEIF files get a clear error row
    pass


class DecodeError(Exception):
    """The file could not be turned into an RGB image; the message is shown to the user.

    `sha256` is set when the file could be read, so failed rows still identify the bytes.
    """

    def __init__(self, message: str, sha256: str | None = None):
        super().__init__(message)
        self.sha256 = sha256


@dataclass
class DecodedImage:
    image: Image.Image  # RGB
    sha256: str
    width: int
    height: int
    format: str
    mode: str  # the file's original mode
    notes: list[str] = field(default_factory=list)
    data: bytes = field(default=b"", repr=False)  # the file's bytes as read once (metadata, provenance)


_NOATIME = getattr(os, "O_NOATIME", 0)
_FILE_KINDS = ((stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
               (stat.S_ISBLK, "block device"))


def _not_regular(mode: int) -> DecodeError | None:
    if stat.S_ISDIR(mode):
        return DecodeError("is a folder that could not be read")
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "special file")
    return DecodeError(f"not a regular file ({kind}); not read")


def _os_error(exc: OSError, path: Path) -> DecodeError:
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return DecodeError("broken symbolic link (its target does not exist)")
        return DecodeError("file not found (missing or removed during the scan)")
    if exc.errno == errno.ELOOP:
        return DecodeError("symbolic link loop (the link leads back to itself); not read")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DecodeError("permission denied (file not readable)")
    if exc.errno == errno.ENXIO:
        return DecodeError("not a regular file (socket or device); not read")
    return DecodeError(f"cannot read file: {exc.strerror or exc}")


def _open_readonly(path: Path) -> int:
    """Read-only, never blocking (a named pipe swapped in after the check cannot hang the scan),
    and without updating the access time where the OS allows it (evidence stays untouched)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if _NOATIME:
        try:
            return os.open(path, flags | _NOATIME)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:  # EPERM: not the owner, O_NOATIME not allowed
                raise
    return os.open(path, flags)


def read_file(path: Path) -> bytes:
    """The file's bytes, read once. Only regular files are opened (never a pipe, socket or
    device: opening or reading those can block or have side effects); at most MAX_FILE_BYTES
    are read; a file that changes while it is read is reported, not half-trusted."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _os_error(exc, path) from None
    refusal = _not_regular(info.st_mode)
    if refusal is not None:
        raise refusal
    if info.st_size > MAX_FILE_BYTES:
        raise DecodeError(f"file is too large ({info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
    try:
        fd = _open_readonly(path)
    except OSError as exc:
        raise _os_error(exc, path) from None
    try:
        before = os.fstat(fd)
        refusal = _not_regular(before.st_mode)  # replaced between the check and the open
        if refusal is not None:
            raise refusal
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        after = os.fstat(fd)
    except OSError as exc:
        raise _os_error(exc, path) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise DecodeError(f"file is too large (more than {MAX_FILE_BYTES:,} bytes)")
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise DecodeError("file changed while it was being read; scan it again",
                          sha256=hashlib.sha256(data).hexdigest())
    return data


def _gray_to_rgb(array: np.ndarray) -> Image.Image:
    gray = np.clip(array, 0, 255).round().astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def check_decoding(decoding: str) -> str:
    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r}; choose one of {', '.join(DECODINGS)}")
    return decoding


def _transposes(orientation: object) -> bool:
    """An EXIF orientation that a viewer applies (2-8)."""
    return isinstance(orientation, int) and orientation in _ROTATIONS


def _authors_rgb(image: Image.Image, orientation: object, notes: list[str]) -> Image.Image:
    """The authors' `convert("RGB")`, and notes where it differs from the analyst decoding."""
    if _transposes(orientation):
        notes.append(f"EXIF orientation {orientation} not applied (authors' decoding)")
    if image.mode.startswith("I") or image.mode == "F":
        high = float(np.asarray(image).max(initial=0))
        if high > 255:
            notes.append(f"{image.mode} values above 255 saturate (authors' decoding)")
    _note_alpha(image, notes)
    return image.convert("RGB")


def _apply_orientation(image: Image.Image, orientation: object, notes: list[str]) -> Image.Image:
    """The image as a viewer shows it (EXIF orientation applied), as the analyst sees it."""
    if _transposes(orientation):
        notes.append(f"EXIF orientation {orientation} applied")
        return ImageOps.exif_transpose(image)
    if orientation not in (1, None):
        notes.append(f"invalid EXIF orientation {orientation} ignored")
    return image


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16"):
        # 16-bit gray: scale by the format's range, not by clipping.
        return _gray_to_rgb(np.asarray(image, dtype=np.float32) * (255.0 / 65535.0))
    if mode == "I":
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min(initial=0)), float(array.max(initial=0))
        if low >= 0 and high <= 255:
            return _gray_to_rgb(array)
        if low >= 0 and high <= 65535:
            return _gray_to_rgb(array * (255.0 / 65535.0))
        notes.append("32-bit integer image rescaled to 8 bits")
        return _gray_to_rgb((array - low) * (255.0 / max(high - low, 1.0)))
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(array)
        if finite.any():
            low, high = float(array[finite].min()), float(array[finite].max())
        else:
            low, high = 0.0, 1.0
        scaled = (np.nan_to_num(array, nan=low, posinf=high, neginf=low) - low) * (255.0 / max(high - low, 1e-12))
        notes.append("float image rescaled to 8 bits" + ("" if finite.all() else " (NaN/inf values clamped)"))
        return _gray_to_rgb(scaled)
    _note_alpha(image, notes)
    return image.convert("RGB")


def _note_alpha(image: Image.Image, notes: list[str]) -> None:
    if image.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") and ("A" in image.mode or "transparency" in image.info):
        notes.append("alpha channel ignored")


# What a file's first bytes say it is; used to tell "damaged image" from "not an image".
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
               (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"),
               (b"\x00\x00\x00\x0cjP  \r\n", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"))


def sniff_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc"):
        return "HEIF"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JPEG XL"
    return None


# Formats recognised by their signature that this installation's Pillow (and plugins) cannot open.
_UNDECODABLE = {
    "JPEG XL": "JPEG XL image: not supported by this installation (neither Pillow nor an installed "
               "plugin decodes JPEG XL); convert it losslessly to PNG to scan it",
    "HEIF": "HEIF/HEIC image that this installation cannot decode (pillow-heif missing or too old)",
    "AVIF": "AVIF image that this installation cannot decode (needs Pillow >= 11 built with AVIF)",
}


def suffix_note(path: Path, fmt: str) -> str | None:
    """A note when the file name's suffix does not match what the content turned out to be."""
    suffix = path.suffix.lower()
    if not suffix or len(suffix) > 6:
        return None
    expected = SUFFIX_FORMATS.get(suffix)
    if expected is None:
        return f"file suffix {suffix} is not an image suffix, content is {fmt}"
    if fmt not in expected:
        return f"file suffix {suffix} does not match its {fmt} content"
    return None


class _OversizedPngChunk(Exception):
    """A PNG metadata chunk (ICC profile, compressed text) over Pillow's safety limits."""


# Pillow refuses a PNG whose compressed metadata chunk decompresses beyond its limits.
_PNG_CHUNK_LIMITS = re.compile(r"MAX_TEXT_CHUNK|MAX_TEXT_MEMORY|Too much memory used in text chunks")
_PNG_METADATA_CHUNKS = (b"iCCP", b"zTXt", b"iTXt", b"tEXt")


def strip_png_chunks(data: bytes, kinds: Sequence[bytes] = _PNG_METADATA_CHUNKS) -> tuple[bytes, list[str]]:
    """`data` without the PNG chunks of the given kinds (pixels untouched); the kinds dropped."""
    out, dropped, pos = [data[:8]], [], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind in kinds:
            if kind.decode("latin-1") not in dropped:
                dropped.append(kind.decode("latin-1"))
        else:
            out.append(data[pos:end])
        pos = end
    out.append(data[pos:])
    return b"".join(out), dropped


def decode_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, reserve: Reserve | None = None,
                 decoding: str = ANALYST) -> DecodedImage:
    """Decodes `data` to RGB; raises only DecodeError (with the sha256 of `data`).

    `reserve(nbytes)`, when given, is called with the estimated decoded size after the header
    is read and before the pixels are decoded (the scan's memory budget waits there).
    `decoding` is ANALYST or AUTHORS (see DECODINGS).
    """
    check_decoding(decoding)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        try:
            return _decode(data, sha256, max_pixels, reserve, decoding)
        except _OversizedPngChunk:
            # A huge ICC profile or text chunk must not make an image unscorable (a way to dodge
            # a verdict): the pixels are scored without the metadata, and the row says so.
            stripped, dropped = strip_png_chunks(data)
            decoded = _decode(stripped, sha256, max_pixels, reserve, decoding)
            decoded.notes.append(f"PNG {'/'.join(dropped)} chunk over Pillow's size limit: ignored, pixels scored "
                                 f"without it")
            return decoded
    except _OversizedPngChunk as exc:
        raise DecodeError(f"cannot decode PNG image: {exc}", sha256) from None
    except DecodeError as exc:
        exc.sha256 = sha256
        raise
    except RecursionError:
        raise DecodeError("cannot decode image: its structure is nested too deeply", sha256) from None
    except Exception as exc:  # noqa: BLE001 - a hostile file must never escape as anything else
        raise DecodeError(f"cannot decode image ({type(exc).__name__}: {exc})", sha256) from None


def _decode(data: bytes, sha256: str, max_pixels: int, reserve: Reserve | None = None,
            decoding: str = ANALYST) -> DecodedImage:
    if not data:
        raise DecodeError("empty file (0 bytes)")
    notes: list[str] = []
    sniffed = sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning etc.; checked below
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise DecodeError(f"image too large: {width}x{height} = {width * height:,} pixels, over the "
                                  f"limit of {max_pixels:,} (possible decompression bomb)")
            if width == 0 or height == 0:
                raise DecodeError("image has zero width or height")
            if reserve is not None:  # wait for room in the scan's memory budget before decoding
                reserve(decoded_bytes_estimate(width, height, image.mode))
            fmt = image.format or "unknown"
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"first frame of {frames} scored")
            original_mode = image.mode
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            if decoding == AUTHORS:
                rgb = _authors_rgb(image, orientation, notes)
            else:
                rgb = _to_rgb(_apply_orientation(image, orientation, notes), notes)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"declares {int(declared.group(1)):,} pixels" if declared else str(exc)
        raise DecodeError(f"image too large: it {size}, over the limit of {max_pixels:,} "
                          f"(possible decompression bomb)") from None
    except UnidentifiedImageError:
        if sniffed in _UNDECODABLE:
            raise DecodeError(_UNDECODABLE[sniffed]) from None
        if sniffed:
            raise DecodeError(f"truncated or damaged {sniffed} file: it starts like a {sniffed} image "
                              f"but cannot be read") from None
        raise DecodeError("not an image, or an image format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
            struct.error, MemoryError, ZeroDivisionError, OverflowError) as exc:
        if isinstance(exc, MemoryError):
            raise DecodeError("out of memory while decoding this image") from None
        message = str(exc) or type(exc).__name__
        if sniffed == "PNG" and isinstance(exc, ValueError) and _PNG_CHUNK_LIMITS.search(message):
            raise _OversizedPngChunk(message) from None
        kind = f"{sniffed} " if sniffed else ""
        if "truncated" in message.lower() or isinstance(exc, EOFError):
            raise DecodeError(f"truncated or damaged {kind}image: {message}") from None
        raise DecodeError(f"cannot decode {kind}image (damaged?): {message}") from None
    if rgb.mode != "RGB" or rgb.width == 0 or rgb.height == 0:
        raise DecodeError(f"cannot decode image: conversion to RGB gave mode {rgb.mode} {rgb.size}")
    return DecodedImage(image=rgb, sha256=sha256, width=rgb.width, height=rgb.height, format=fmt,
                        mode=original_mode, notes=notes, data=data)


def decode_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS,
                 reserve: Reserve | None = None, decoding: str = ANALYST) -> DecodedImage:
    """Reads `path` once and decodes it; raises DecodeError with a plain-words reason."""
    path = Path(path)
    decoded = decode_bytes(read_file(path), max_pixels=max_pixels, reserve=reserve, decoding=decoding)
    note = suffix_note(path, decoded.format)
    if note:
        decoded.notes.append(note)
    return decoded
