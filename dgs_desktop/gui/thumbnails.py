"""Thumbnails made on pool threads, only for rows the table actually shows.

The table asks for a thumbnail when it paints a row; the first ask starts a background job
and returns a placeholder. Every file is read through the scan's safe reader
(`scan.decode.read_file`: regular files only, read-only, no atime update, size limit), so a
named pipe or a device in a scanned folder can never block the thumbnail thread. QImage
(unlike QPixmap) may be built off the GUI thread, so the job decodes and shrinks there and the
GUI thread only converts the small result.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 40
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def array_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage of an (H, W, 3) uint8 array (safe to hand to another thread)."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage of a PIL image, as RGB."""
    return array_to_qimage(np.asarray(image.convert("RGB")))


def tone_map(rgb: np.ndarray) -> np.ndarray:
    """Stretches the 0.5-99.5 percentile range to 0-255, for display only.

    A 12- or 16-bit image whose values fill a small part of the 16-bit range decodes to a
    nearly black (or, clipped, white) picture; the thumbnail should show its content.
    """
    low, high = np.percentile(rgb, (0.5, 99.5))
    if high - low < 1:
        return rgb
    stretched = (rgb.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(stretched, 0, 255).astype(np.uint8)


def thumbnail_from_decoded(decoded, size: int = THUMBNAIL_SIZE) -> QImage:
    """A thumbnail of an already decoded image (`scan.decode.DecodedImage`)."""
    from PIL import Image

    image = decoded.image.copy()
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    if decoded.mode in HIGH_DEPTH_MODES:
        image = Image.fromarray(tone_map(np.asarray(image)))
    return pil_to_qimage(image)


def jpeg_thumbnail(data: bytes, size: int) -> QImage | None:
    """A JPEG decoded at reduced scale (libjpeg's DCT scaling: ~10x faster on a 12 MP photo),
    from bytes the safe reader already read; None when it is not a plain 8-bit JPEG."""
    import io
    import warnings

    from PIL import Image, ImageOps

    from ..scan.decode import DEFAULT_MAX_PIXELS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image: Image.Image = Image.open(io.BytesIO(data))
        if image.format != "JPEG" or image.width * image.height > DEFAULT_MAX_PIXELS:
            return None
        image.draft("RGB", (size * 2, size * 2))
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail((size, size), Image.Resampling.BILINEAR)
        return pil_to_qimage(image)


def make_thumbnail(path: str, size: int = THUMBNAIL_SIZE) -> QImage | None:
    """Reads `path` with the scan's safe reader (regular files only, read-only, size limit) and
    decodes those bytes; None when it cannot be read or decoded."""
    from pathlib import Path

    from ..scan.decode import DecodeError, decode_bytes, read_file, sniff_format

    try:
        data = read_file(Path(path))
        if sniff_format(data) == "JPEG":
            try:
                thumbnail = jpeg_thumbnail(data, size)
            except Exception:  # noqa: BLE001 - a damaged JPEG: the full decoder says why (below)
                thumbnail = None
            if thumbnail is not None:
                return thumbnail
        return thumbnail_from_decoded(decode_bytes(data), size)
    except DecodeError as exc:  # the row itself says why the file failed
        log.debug("no thumbnail for %s: %s", path, exc)
    except Exception:  # noqa: BLE001 - a thumbnail is never worth a crash
        log.warning("thumbnail failed for %s", path, exc_info=True)
    return None


class _Signals(QObject):
    done = Signal(str, object)  # path, QImage or None


class _ThumbnailJob(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals):
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        self.signals.done.emit(self.path, make_thumbnail(self.path, self.size))


class ThumbnailProvider(QObject):
    """`get(path)` returns a QPixmap or None (and starts making it); `ready(path)` when made."""

    ready = Signal(str)

    def __init__(self, size: int = THUMBNAIL_SIZE, capacity: int = 4000, parent=None):
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._pending: set[str] = set()
        # One thread: thumbnails must not steal the cores the scan is using.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        # Owned by the provider, so no job's thread deletes it; made after the pool, so it is
        # deleted after the pool has waited for the running job.
        self._signals = _Signals(self)
        self._signals.done.connect(self._done)

    def get(self, path: str) -> QPixmap | None:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if path not in self._pending:
            self._pending.add(path)
            self.pool.start(_ThumbnailJob(path, self.size, self._signals))
        return None

    def put(self, path: str, image: QImage | None) -> None:
        """A thumbnail made elsewhere from bytes already read (e.g. the detail pane's decode)."""
        self._pending.add(path)
        self._done(path, image)

    def has(self, path: str) -> bool:
        return self._cache.get(path) is not None

    def clear(self) -> None:
        self.pool.clear()
        self._cache.clear()
        self._pending.clear()

    def shutdown(self, timeout_ms: int) -> bool:
        """Drops queued jobs and waits for the running one; True when the pool is idle."""
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)

    def _done(self, path: str, image) -> None:
        if path not in self._pending:
            return  # cleared meanwhile
        self._pending.discard(path)
        self._cache[path] = None if image is None else QPixmap.fromImage(image)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(path)
