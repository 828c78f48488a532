"""Batched JPEG decoding on the scan device (nvJPEG through torchvision on CUDA).

A CPU worker reads the file once, hashes it and parses only the JPEG header with Pillow
(`plan_decode`): the pixel limit, the EXIF orientation and the color mode are decided there,
exactly as `decode.decode_bytes` decides them. Plain RGB/grayscale single-frame JPEGs are then
decoded in batches on the device (`decode_jpegs`); everything else (CMYK, MPO, other formats,
damaged files) takes the Pillow path, so errors and notes are the Pillow path's own. Where the
device decoder fails on a file, Pillow decodes it. On the CPU, torchvision's decoder
(libjpeg-turbo) gives Pillow's pixels bit for bit; nvJPEG's differ in the last bits.

The CSV `notes` name the decoder only when it is not the device's default (nvJPEG for JPEGs
on CUDA, Pillow elsewhere).
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .decode import DEFAULT_MAX_PIXELS, DecodedImage, decode_bytes, read_file, sniff_format, suffix_note

log = logging.getLogger(__name__)

PILLOW = "pillow"
TORCHVISION = "torchvision"
_DEVICE_MODES = ("RGB", "L")  # what the device decoder turns into RGB exactly as Pillow does
_EOI = b"\xff\xd9"


@dataclass
class PendingJpeg:
    """A JPEG read, hashed and checked on a worker, to be decoded on the device."""

    data: bytes
    sha256: str
    width: int  # after EXIF orientation
    height: int
    mode: str
    orientation: int
    notes: list[str] = field(default_factory=list)


def torchvision_decoder_available(device: torch.device) -> bool:
    """Whether torchvision can decode JPEGs on `device` (nvJPEG on CUDA)."""
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except Exception:  # noqa: BLE001 - missing or broken torchvision: Pillow does the work
        return False
    return device.type in ("cpu", "cuda")


def resolve_jpeg_decoder(device: torch.device, requested: str = "auto") -> str:
    """`pillow` or `torchvision`: auto means nvJPEG on CUDA (where available), Pillow elsewhere."""
    requested = (requested or "auto").lower()
    if requested == "auto":
        return TORCHVISION if device.type == "cuda" and torchvision_decoder_available(device) else PILLOW
    if requested == TORCHVISION and not torchvision_decoder_available(device):
        return PILLOW
    if requested not in (PILLOW, TORCHVISION):
        raise ValueError(f"unknown JPEG decoder {requested!r} (auto, pillow or torchvision)")
    return requested


def default_decoder(device: torch.device) -> str:
    return resolve_jpeg_decoder(device, "auto")


def decoder_note(decoder: str, device: torch.device) -> str | None:
    """The note for a JPEG decoded by `decoder`, or None when that is the device's default."""
    if decoder == default_decoder(device):
        return None
    if decoder == TORCHVISION:
        return "decoded with nvJPEG" if device.type == "cuda" else "decoded with torchvision"
    return "decoded with Pillow"


def _orientation(image: Image.Image) -> int:
    value = image.getexif().get(0x0112, 1)
    return value if value in range(2, 9) else 1  # as ImageOps.exif_transpose: other values are ignored


def plan_decode(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage | PendingJpeg:
    """Reads `path` once: a PendingJpeg for the device decoder, else the Pillow-decoded image.

    Raises DecodeError exactly where `decode.decode_image` would.
    """
    data = read_file(path)
    if sniff_format(data) == "JPEG" and data.rstrip(b"\0\r\n ").endswith(_EOI):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = Image.open(io.BytesIO(data))  # parses the header only, decodes nothing
                width, height = header.size
                eligible = (header.format == "JPEG" and header.mode in _DEVICE_MODES
                            and getattr(header, "n_frames", 1) == 1 and 0 < width * height <= max_pixels)
                orientation = _orientation(header) if eligible else 1
                mode = header.mode
        except Exception:  # noqa: BLE001 - anything odd: the Pillow path gives the precise error
            eligible = False
        if eligible:
            notes = [f"EXIF orientation {orientation} applied"] if orientation != 1 else []
            note = suffix_note(path, "JPEG")
            if note:
                notes.append(note)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            return PendingJpeg(data=data, sha256=hashlib.sha256(data).hexdigest(), width=width, height=height,
                               mode=mode, orientation=orientation, notes=notes)
    decoded = decode_bytes(data, max_pixels=max_pixels)
    note = suffix_note(path, decoded.format)
    if note:
        decoded.notes.append(note)
    return decoded


def apply_orientation(rgb: torch.Tensor, orientation: int) -> torch.Tensor:
    """EXIF orientation on an (H, W, 3) tensor, as Pillow's `ImageOps.exif_transpose`."""
    if orientation == 2:
        return rgb.flip(1)
    if orientation == 3:
        return rgb.flip(0, 1)
    if orientation == 4:
        return rgb.flip(0)
    if orientation == 5:
        return rgb.transpose(0, 1)
    if orientation == 6:
        return rgb.transpose(0, 1).flip(1)
    if orientation == 7:
        return rgb.transpose(0, 1).flip(0, 1)
    if orientation == 8:
        return rgb.transpose(0, 1).flip(0)
    return rgb


def decode_jpegs(pending: list[PendingJpeg], device: torch.device) -> list[torch.Tensor | None]:
    """(H, W, 3) uint8 tensors on `device`, one per PendingJpeg; None where the device decoder
    failed (the caller decodes that file with Pillow)."""
    if not pending:
        return []
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image I/O in favour of TorchCodec; it still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode_jpegs(pending, device)


def _decode_jpegs(pending: list[PendingJpeg], device: torch.device) -> list[torch.Tensor | None]:
    from torchvision.io import ImageReadMode, decode_jpeg

    inputs = [torch.frombuffer(bytearray(item.data), dtype=torch.uint8) for item in pending]
    try:
        decoded = decode_jpeg(inputs, mode=ImageReadMode.RGB, device=device)
    except Exception as exc:  # noqa: BLE001 - one bad file fails the batch call: retry one by one
        log.debug("batched JPEG decode failed (%s); decoding one by one", exc)
        decoded = []
        for tensor in inputs:
            try:
                decoded.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device))
            except Exception:  # noqa: BLE001
                decoded.append(None)
    out: list[torch.Tensor | None] = []
    for item, chw in zip(pending, decoded):
        if chw is None:
            out.append(None)
            continue
        rgb = apply_orientation(chw.permute(1, 2, 0), item.orientation).contiguous()
        out.append(rgb if tuple(rgb.shape[:2]) == (item.height, item.width) else None)
    return out


def pillow_fallback(item: PendingJpeg, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Pillow decodes a JPEG the device decoder could not (raises DecodeError as that path)."""
    decoded = decode_bytes(item.data, max_pixels=max_pixels)
    decoded.notes.extend(note for note in item.notes if note not in decoded.notes)
    return decoded
