"""Thumbnails made on pool threads, only for rows the table actually shows.

The table asks for a thumbnail when it paints a row; the first ask starts a background job
and returns a placeholder. QImage (unlike QPixmap) may be built off the GUI thread, so the
job decodes and shrinks there and the GUI thread only converts the small result.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

THUMBNAIL_SIZE = 40


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage of an RGB PIL image (safe to hand to another thread)."""
    image = image.convert("RGB")
    data = image.tobytes()
    qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    return qimage.copy()


def make_thumbnail(path: str, size: int = THUMBNAIL_SIZE) -> QImage | None:
    import warnings

    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale, much faster
                image = ImageOps.exif_transpose(image)
                image.thumbnail((size, size))
                return pil_to_qimage(image)
    except Exception:  # noqa: BLE001 - no thumbnail for files Pillow cannot open; the row says why
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
        self._signals = _Signals()
        self._signals.done.connect(self._done)
        # One thread: thumbnails must not steal the cores the scan is using.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)

    def get(self, path: str) -> QPixmap | None:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if path not in self._pending:
            self._pending.add(path)
            self.pool.start(_ThumbnailJob(path, self.size, self._signals))
        return None

    def clear(self) -> None:
        self.pool.clear()
        self._cache.clear()
        self._pending.clear()

    def _done(self, path: str, image) -> None:
        if path not in self._pending:
            return  # cleared meanwhile
        self._pending.discard(path)
        self._cache[path] = None if image is None else QPixmap.fromImage(image)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(path)
