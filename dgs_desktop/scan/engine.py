"""The scan pipeline shared by the CLI and the GUI.

    files -> [worker threads: read + sha256 + decode + patch selection] -> batches -> model

Decoding and patch selection release the GIL (Pillow, numpy, torch FFT), so a thread pool
uses every core while the main thread runs the model; a bounded look-ahead keeps memory
flat however many files are scanned. Results come back in input order as soon as their batch
is scored. A file that fails becomes a result with an error; the scan goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..detector.device import autocast_for
from ..detector.patches import PatchSelection, mosaics_to_tensor, select_patches
from ..verdict import verdict
from .decode import DEFAULT_MAX_PIXELS, DecodeError, decode_image


@dataclass
class ScanResult:
    path: str
    status: str  # "ok" or "error"
    sha256: str = ""
    fake_probability: float | None = None
    error: str = ""
    width: int | None = None
    height: int | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)
    provenance: str = ""  # one-line metadata / C2PA / generator signals, shown beside the score
    selection: PatchSelection | None = None  # kept only when the caller asks for it

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def verdict(self, threshold: float) -> str:
        return verdict(self.fake_probability, threshold)


@dataclass
class _Prepared:
    result: ScanResult
    selection: PatchSelection | None


def prepare(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> _Prepared:
    """Read, hash, decode and patch-select one file, or one image held elsewhere (anything with
    `name` and `decode(max_pixels)`, such as a dataset row of the trainer: same decoder on its
    bytes). Never raises for a bad file."""
    held = hasattr(path, "decode")
    result = ScanResult(path=path.name if held else str(path), status="ok")
    try:
        decoded = path.decode(max_pixels) if held else decode_image(path, max_pixels=max_pixels)
        result.sha256, result.width, result.height = decoded.sha256, decoded.width, decoded.height
        result.format, result.notes = decoded.format, decoded.notes
        selection = select_patches(decoded.image)
        return _Prepared(result, selection)
    except DecodeError as exc:
        result.status, result.error, result.sha256 = "error", str(exc), exc.sha256 or ""
    except MemoryError:
        result.status, result.error = "error", "out of memory while decoding this image"
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the scan
        result.status, result.error = "error", f"unexpected error: {type(exc).__name__}: {exc}"
    return _Prepared(result, None)


def default_batch_size(device: torch.device) -> int:
    """The batch size the CLI, the window and evaluation use unless told otherwise.

    Scores are bit-identical only for the same device type and batch size (see
    ModelRunner), so every front end takes its default from here.
    """
    return 32 if device.type == "cuda" else 8


class ModelRunner:
    """Scores mosaics so that an image's score never depends on what it was batched with.

    Matrix kernels give results that differ in the last bits with the batch shape, so every
    forward pass has exactly `batch_size` rows: a short batch is padded with zeros. Rows do
    not interact, so with the same device type and batch size the same file gets the
    identical probability in any folder, position or company. On GPU out-of-memory the
    forward size is halved and the chunk retried (scores then differ in the last bits).
    """

    def __init__(self, detector: torch.nn.Module, device: torch.device, batch_size: int = 8):
        self.detector = detector
        self.device = device
        self.forward_size = max(1, batch_size)

    @torch.inference_mode()
    def _forward(self, chunk: list[np.ndarray]) -> list[float]:
        inputs = mosaics_to_tensor(chunk)
        if len(chunk) < self.forward_size:
            padding = inputs.new_zeros((self.forward_size - len(chunk), *inputs.shape[1:]))
            inputs = torch.cat([inputs, padding])
        inputs = inputs.to(self.device, non_blocking=True)
        with autocast_for(self.device):
            logits = self.detector(inputs)
        return torch.sigmoid(logits.float())[: len(chunk)].cpu().tolist()

    def score(self, mosaics: list[np.ndarray]) -> list[float]:
        scores: list[float] = []
        start = 0
        while start < len(mosaics):
            chunk = mosaics[start:start + self.forward_size]
            try:
                scores.extend(self._forward(chunk))
                start += len(chunk)
            except torch.OutOfMemoryError:
                if self.forward_size == 1:
                    raise
                self.forward_size = max(1, self.forward_size // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        return scores


class Scanner:
    """Runs scans with one detector on one device."""

    def __init__(self, detector: torch.nn.Module, device: torch.device, batch_size: int | None = None,
                 workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.batch_size = max(1, int(batch_size or default_batch_size(device)))
        self.runner = ModelRunner(detector.eval(), device, self.batch_size)
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.max_pixels = max_pixels

    def scan(self, paths: Iterable[Path], cancel: threading.Event | None = None,
             keep_selection: bool = False) -> Iterator[ScanResult]:
        """Yields one ScanResult per path, in input order. Stops early when `cancel` is set."""
        cancel = cancel or threading.Event()
        path_iter = iter(paths)
        lookahead = self.workers * 2 + self.batch_size * 2
        pending: deque[Future] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="dgs-prepare") as pool:
            def refill() -> None:
                while len(pending) < lookahead and not cancel.is_set():
                    path = next(path_iter, None)
                    if path is None:
                        return
                    item = path if hasattr(path, "decode") else Path(path)
                    pending.append(pool.submit(prepare, item, self.max_pixels))

            try:
                refill()
                while pending and not cancel.is_set():
                    # A full batch of scorable images (failed files ride along): padding only at
                    # the end, and few model calls per image, which keeps the GIL free for the
                    # preparing threads.
                    batch: list[_Prepared] = []
                    scorable = 0
                    while pending and scorable < self.batch_size and not cancel.is_set():
                        item = pending.popleft().result()
                        batch.append(item)
                        scorable += item.selection is not None
                        refill()
                    yield from self._score(batch, keep_selection)
                    refill()
            finally:
                for future in pending:  # on cancel or error: do not start what is queued
                    future.cancel()

    def _score(self, batch: list[_Prepared], keep_selection: bool) -> Iterator[ScanResult]:
        ready = [item for item in batch if item.selection is not None]
        if ready:
            try:
                scores = self.runner.score([item.selection.mosaic for item in ready])
            except Exception as exc:  # noqa: BLE001 - a model failure marks the batch, not the scan
                scores = [None] * len(ready)
                for item in ready:
                    item.result.status = "error"
                    item.result.error = f"model failed: {type(exc).__name__}: {exc}"
            for item, score in zip(ready, scores):
                if score is not None:
                    item.result.fake_probability = float(score)
        for item in batch:
            if keep_selection:
                item.result.selection = item.selection
            yield item.result


@dataclass
class ScanProgress:
    """Counts and rate for progress displays (CLI bar, GUI status)."""

    total: int | None = None
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_result_s: float | None = None

    def update(self, result: ScanResult) -> None:
        self.done += 1
        self.failed += result.status != "ok"
        if self.first_result_s is None:
            self.first_result_s = time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


ProgressCallback = Callable[[ScanProgress, ScanResult], None]
