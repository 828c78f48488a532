"""The scan pipeline shared by the CLI and the GUI.

    files -> [worker threads: read + sha256 + decode + patch selection] -> batches -> model

Decoding and patch selection release the GIL (Pillow, numpy, torch FFT), so a thread pool
uses every core while the main thread runs the model; a bounded look-ahead keeps memory
flat however many files are scanned. Results come back in input order as soon as their batch
is scored. A file that fails becomes a result with an error; the scan goes on.

The device path (`select_on="device"`, the default on CUDA): workers only read, hash and
decode (JPEGs are left for nvJPEG), and each batch's patch selection runs as batched torch
ops on the model's device (`device_select`), choosing the same patches as the host path.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..detector.device import autocast_for, resolve_precision
from ..detector.patches import PatchSelection, mosaics_to_tensor, select_patches
from ..provenance.summary import ProvenanceFacts, provenance_facts
from ..record import ScanRecord, Status, reported_probability
from ..verdict import NON_FINITE_SCORE
from .decode import ANALYST, DEFAULT_MAX_PIXELS, DecodeError, Reserve, check_decoding, decode_image
from .memory import DEFAULT_MEMORY_BUDGET_MIB, MIB, MemoryBudget

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    result: ScanRecord
    selection: PatchSelection | None
    decoded: Any = None  # device path: a DecodedImage or PendingJpeg awaiting selection on the device

    @property
    def scorable(self) -> bool:
        return self.selection is not None or self.decoded is not None

    @property
    def selected(self) -> PatchSelection:
        """The patch selection of an item that has one (a batch's ready items)."""
        if self.selection is None:
            raise ValueError(f"{self.result.path} has no patch selection")
        return self.selection


# What a copy takes from the first file with its bytes: the score and how it was reached.
ScoreFacts = tuple[Status, str, float | None, int | None, float | None, float | None, tuple[str, ...]]


def score_facts(result: ScanRecord, notes_before: int) -> ScoreFacts:
    """The scoring outcome of `result` (the notes scoring added after its first `notes_before`)."""
    return (result.status, result.error, result.fake_probability, result.stability_orders, result.stability_low,
            result.stability_high, tuple(result.notes[notes_before:]))


def take_score(result: ScanRecord, facts: ScoreFacts) -> None:
    """Gives a copy the score of the first file with the same bytes: identical bytes give the
    identical mosaic, hence the identical score, without a second forward pass."""
    (result.status, result.error, result.fake_probability, result.stability_orders, result.stability_low,
     result.stability_high, notes) = facts
    result.notes.extend(notes)


def _take_provenance(result: ScanRecord, data: bytes) -> None:
    """Provenance from the bytes the decoder already read (never a second read of the file);
    beside the score, never in it. Read after the decode's memory claim is given back."""
    facts = provenance_facts(data) if data else ProvenanceFacts()
    result.provenance, result.jpeg_quality, result.provenance_claim = facts.line, facts.jpeg_quality, facts.claim


def prepare(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, budget: MemoryBudget | None = None,
            decoding: str = ANALYST) -> _Prepared:
    """Read, hash, decode and patch-select one file, or one image held elsewhere (anything with
    `name` and `decode(max_pixels)`, such as a dataset row of the trainer: same decoder on its
    bytes). Never raises for a bad file.

    `path` may carry discovery's verdict on it (scan.discover.FoundPath): a `refusal` (a link
    out of the scanned folders: not read) or `same_as` (another name of a file already listed).
    `budget`: decoding a file waits until the image's estimated size fits (scan.memory).
    `decoding`: scan.decode's ANALYST (the app) or AUTHORS (reproducing the paper).
    """
    return _read_decode(path, max_pixels, budget, decode_image, select_now=lambda decoded: True, decoding=decoding)


# Decoded images up to this size wait in the look-ahead for batched selection on the device;
# larger ones are selected in the worker, within the memory budget, and freed at once.
DEVICE_HOLD_MAX_PIXELS = 16_000_000


def read_and_decode(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, jpeg_on_device: bool = False,
                    budget: MemoryBudget | None = None, decoding: str = ANALYST) -> _Prepared:
    """The device path's worker step: read, hash and decode (or only check a JPEG for the
    device decoder); patch selection happens later, batched on the device. Never raises.

    Links and hard links as in `prepare`. An image over DEVICE_HOLD_MAX_PIXELS is selected here
    on the host (the same patches), so the look-ahead never holds large decoded images."""
    from .gpu_decode import plan_decode

    def decode(file: Path, max_pixels: int, reserve: Reserve | None = None, decoding: str = ANALYST) -> Any:
        if jpeg_on_device:  # the device decoder decodes as ANALYST does (the Scanner never pairs it with AUTHORS)
            return plan_decode(file, max_pixels)
        return decode_image(file, max_pixels, reserve=reserve, decoding=decoding)

    def too_large_to_hold(decoded: Any) -> bool:
        return getattr(decoded, "image", None) is not None and decoded.width * decoded.height > DEVICE_HOLD_MAX_PIXELS

    return _read_decode(path, max_pixels, budget, decode, select_now=too_large_to_hold, decoding=decoding)


def _read_decode(path: Any, max_pixels: int, budget: MemoryBudget | None, decode: Callable[..., Any],
                 select_now: Callable[[Any], bool], decoding: str = ANALYST) -> _Prepared:
    """Both paths' worker step: the row for `path`, its decoded image, and its patches when
    `select_now(decoded)` (else the decoded image waits for selection on the device)."""
    held = hasattr(path, "decode")  # an image held elsewhere: decoded from its own bytes
    result = ScanRecord(path=path.name if held else str(path), status=Status.OK)
    refusal, same_as = getattr(path, "refusal", ""), getattr(path, "same_as", "")
    if refusal:
        result.status, result.error = Status.ERROR, refusal
        return _Prepared(result, None)
    try:
        prepared = None
        with budget.claim() if budget is not None else nullcontext() as claim:
            decoded = path.decode(max_pixels, decoding=decoding) if held else \
                decode(path, max_pixels, reserve=claim.reserve if claim else None, decoding=decoding)
            result.sha256, result.width, result.height = decoded.sha256, decoded.width, decoded.height
            result.format, result.notes = getattr(decoded, "format", "JPEG"), list(decoded.notes)
            data = getattr(decoded, "data", b"")
            if same_as:
                result.notes.append(f"same file as {same_as}")
            if select_now(decoded):
                selection = select_patches(decoded.image)
                result.notes.extend(selection.reliability_notes)
                result.with_selection(selection)
                del decoded  # freed before the budget is given back
                prepared = _Prepared(result, selection)
        _take_provenance(result, data)
        return prepared or _Prepared(result, None, decoded)
    except DecodeError as exc:
        result.status, result.error, result.sha256 = Status.ERROR, str(exc), exc.sha256 or ""
    except MemoryError:
        result.status, result.error = Status.ERROR, "out of memory while decoding this image"
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the scan
        result.status, result.error = Status.ERROR, f"unexpected error: {type(exc).__name__}: {exc}"
    return _Prepared(result, None)


def default_batch_size(device: torch.device) -> int:
    """The batch size the CLI, the window and evaluation use unless told otherwise.

    Scores are bit-identical only for the same device type and batch size (see
    ModelRunner), so every front end takes its default from here. On the CPU it is 1: a lone
    image then costs one forward, not a padded eight (ViT-L/14 on 2 cores: 1.1 s instead of
    8.1 s), while a folder scans at 0.93x the speed of batches of 8 (bench/cpu_batch.py).
    """
    return 32 if device.type == "cuda" else 1


class ModelRunner:
    """Scores mosaics so that an image's score never depends on what it was batched with.

    Matrix kernels give results that differ in the last bits with the batch shape, so every
    forward pass has exactly `batch_size` rows: a short batch is padded with zeros. Rows do
    not interact, so with the same device type and batch size the same file gets the
    identical probability in any folder, position or company. On GPU out-of-memory the
    forward size is halved and the chunk retried (scores then differ in the last bits, so
    `last_forward_sizes` tells the caller which rows were scored at the smaller size).
    A non-finite logit gives NaN, never a probability (sigmoid(inf) would read as 1.0).
    `precision` is `auto`, `fp32` or `bf16` (see `resolve_precision`); `self.precision` holds
    what it resolved to.
    """

    def __init__(self, detector: torch.nn.Module, device: torch.device, batch_size: int = 8,
                 precision: str = "auto"):
        self.detector = detector
        self.device = device
        self.batch_size = max(1, batch_size)
        self.forward_size = self.batch_size
        self.last_forward_sizes: list[int] = []
        self.precision = resolve_precision(device, precision)

    @torch.inference_mode()
    def _forward(self, chunk: Sequence[np.ndarray] | torch.Tensor) -> list[float]:
        inputs = mosaics_to_tensor(chunk, device=self.device)  # uint8 travels, normalised there
        if len(chunk) < self.forward_size:
            padding = inputs.new_zeros((self.forward_size - len(chunk), *inputs.shape[1:]))
            inputs = torch.cat([inputs, padding])
        with autocast_for(self.device, self.precision):
            logits = self.detector(inputs)
        logits = logits.float()
        probabilities = torch.where(torch.isfinite(logits), torch.sigmoid(logits), torch.nan)
        return probabilities[: len(chunk)].cpu().tolist()

    def score(self, mosaics: Sequence[np.ndarray] | torch.Tensor) -> list[float]:
        """P(fake) per mosaic: a list of (224, 224, 3) uint8 arrays or a (B, 224, 224, 3) uint8 tensor."""
        scores: list[float] = []
        self.last_forward_sizes = []
        start = 0
        while start < len(mosaics):
            chunk = mosaics[start:start + self.forward_size]
            try:
                scores.extend(self._forward(chunk))
                self.last_forward_sizes.extend([self.forward_size] * len(chunk))
                start += len(chunk)
            except torch.OutOfMemoryError:
                if self.forward_size == 1:
                    raise
                self.forward_size = max(1, self.forward_size // 2)
                log.warning("out of memory on %s: forward passes of %d images now (asked for %d); "
                            "scores from now on may differ in the last digits", self.device,
                            self.forward_size, self.batch_size)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        return scores


class Scanner:
    """Runs scans with one detector on one device."""

    @property
    def precision(self) -> str:
        """`fp32` or `bf16`: what the detector computes in (the CSV `precision` column)."""
        return self.runner.precision

    def __init__(self, detector: torch.nn.Module, device: torch.device, batch_size: int | None = None,
                 workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, precision: str = "auto",
                 select_on: str = "auto", jpeg_decoder: str = "auto", memory_budget: int | None = None,
                 stability_orders: int = 0, tta_orders: int = 1, decoding: str = ANALYST):
        """`decoding`: scan.decode's ANALYST (the app's) or AUTHORS (reproducing the paper);
        `stability_orders` K: each image is also scored in K other patch orders and the
        spread is recorded (an inconclusive reason when it crosses the threshold);
        `tta_orders` K: the reported P(fake) is the mean over K orders (1: the plain score)."""
        from .gpu_decode import resolve_jpeg_decoder

        if stability_orders < 0 or tta_orders < 1:
            raise ValueError("stability_orders must be >= 0 and tta_orders >= 1")
        self.stability_orders, self.tta_orders = int(stability_orders), int(tta_orders)
        self.batch_size = max(1, int(batch_size or default_batch_size(device)))
        self.runner = ModelRunner(detector.eval(), device, self.batch_size, precision)
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self.max_pixels = max_pixels
        # bytes that decoding may hold at once across workers (see scan.memory)
        self.budget = MemoryBudget(memory_budget or DEFAULT_MEMORY_BUDGET_MIB * MIB)
        self.device = device
        if select_on not in ("auto", "host", "device"):
            raise ValueError(f"select_on must be auto, host or device, not {select_on!r}")
        # On the CPU the host path's threads select in parallel and measured faster (bench/README.md).
        self.select_on = ("device" if device.type == "cuda" else "host") if select_on == "auto" else select_on
        self.decoding = check_decoding(decoding)
        # The device JPEG decoder reproduces the analyst decoding only; the authors' is Pillow's.
        on_device_jpeg = self.select_on == "device" and self.decoding == ANALYST
        self.jpeg_decoder = resolve_jpeg_decoder(device, jpeg_decoder) if on_device_jpeg else "pillow"
        # sha256 -> the score this scanner gave those bytes (a few hundred bytes per content), kept
        # across scans: the window scans each drop on its own, and a copy dropped later needs no
        # forward pass. Only scores are kept; a content whose scoring failed is scored again.
        self.known: dict[str, ScoreFacts] = {}

    def scan(self, paths: Iterable[Path], cancel: threading.Event | None = None,
             keep_selection: bool = False) -> Iterator[ScanRecord]:
        """Yields one ScanRecord per path, in input order. Stops early when `cancel` is set."""
        cancel = cancel or threading.Event()
        path_iter = iter(paths)
        on_device = self.select_on == "device"
        # Decoded images wait for the device path, mosaics for the host path: keep fewer of the former.
        lookahead = self.workers * 2 + self.batch_size * (1 if on_device else 2)
        work: tuple[Any, ...]  # the worker step and its arguments after the path
        if on_device:
            work = (read_and_decode, self.jpeg_decoder == "torchvision", self.budget, self.decoding)
        else:
            work = (prepare, self.budget, self.decoding)
        pending: deque[Future[_Prepared]] = deque()
        # sha256 -> the score of the first file with those bytes, in this scan or an earlier one;
        # decided after each file's own read and hash, so every file is read once.
        scored: dict[str, ScoreFacts] = dict(self.known)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="dgs-prepare") as pool:
            def refill() -> None:
                while len(pending) < lookahead and not cancel.is_set():
                    path = next(path_iter, None)
                    if path is None:
                        return
                    # a file (a Path keeps discovery's notes), or an image held elsewhere
                    item = path if isinstance(path, Path) or hasattr(path, "decode") else Path(path)
                    pending.append(pool.submit(work[0], item, self.max_pixels, *work[1:]))

            try:
                refill()
                while pending and not cancel.is_set():
                    # A full batch of scorable images (failed files ride along): padding only at
                    # the end, and few model calls per image, which keeps the GIL free for the
                    # preparing threads.
                    batch: list[_Prepared] = []
                    contents: set[str] = set()  # of this batch: a copy needs no place in its forward pass
                    scorable = 0
                    while pending and scorable < self.batch_size and not cancel.is_set():
                        item = pending.popleft().result()
                        sha256 = item.result.sha256
                        scorable += item.scorable and not (sha256 and (sha256 in scored or sha256 in contents))
                        contents.add(sha256)
                        batch.append(item)
                        refill()
                    mosaics = self._select_on_device(batch) if on_device else None
                    yield from self._score(batch, keep_selection, mosaics, scored)
                    refill()
            finally:
                for future in pending:  # on cancel or error: do not start what is queued
                    future.cancel()

    def _select_on_device(self, batch: list[_Prepared]) -> torch.Tensor | None:
        """Decodes the batch's JPEGs and selects its patches on the device. Returns the mosaics
        of the items that got a selection, in batch order (None: selected on the host instead)."""
        from .device_select import select_batch
        from .gpu_decode import PendingJpeg, decode_jpegs, decoder_note, pillow_fallback

        waiting = [item for item in batch if item.decoded is not None]
        jpegs = [item for item in waiting if isinstance(item.decoded, PendingJpeg)]
        try:
            tensors = decode_jpegs([item.decoded for item in jpegs], self.device)
        except Exception:  # noqa: BLE001 - e.g. out of GPU memory: Pillow decodes them
            tensors = [None] * len(jpegs)
        for item, tensor in zip(jpegs, tensors):
            decoder = "torchvision" if tensor is not None else "pillow"
            if tensor is None:
                try:
                    item.decoded = pillow_fallback(item.decoded, self.max_pixels)
                except DecodeError as exc:
                    item.result.status, item.result.error, item.decoded = Status.ERROR, str(exc), None
                    continue
            else:
                item.decoded = tensor
            note = decoder_note(decoder, self.device)
            if note:
                item.result.notes.append(note)
        ready = [item for item in waiting if item.decoded is not None]
        # Large images were selected in their worker: then the batch scores host mosaics.
        selected_in_worker = any(item.selection is not None for item in batch)
        images = [item.decoded if isinstance(item.decoded, torch.Tensor) else item.decoded.image for item in ready]
        try:
            mosaics, selections = select_batch(images, self.device)
        except Exception:  # noqa: BLE001 - e.g. a huge image out of GPU memory: the host path
            mosaics = None
            selections = [select_patches(image.cpu().numpy() if isinstance(image, torch.Tensor) else image)
                          for image in images]
        for item, selection in zip(ready, selections):
            item.selection, item.decoded = selection, None
            item.result.notes.extend(selection.reliability_notes)
            item.result.with_selection(selection)
        return None if selected_in_worker else mosaics

    def _order_scores(self, items: list[_Prepared]) -> dict[int, list[float]]:
        """Scores of the other patch orders (seeds 1..m) that --stability and --tta need, per item."""
        from ..detector.patches import other_orders

        count = max(self.stability_orders, self.tta_orders - 1)
        if count <= 0 or not items:
            return {}
        mosaics = [mosaic for item in items for mosaic in other_orders(item.selected, count)]
        try:
            flat = self.runner.score(mosaics)
        except Exception as exc:  # noqa: BLE001 - as a failed batch: these rows become errors
            flat = [math.nan] * len(mosaics)
            log.warning("scoring other patch orders failed: %s", exc)
        return {id(item): flat[i * count:(i + 1) * count] for i, item in enumerate(items)}

    def _take_scores(self, result: ScanRecord, score: float, others: list[float]) -> None:
        """The reported P(fake) (the mean over orders with --tta) and the stability spread."""
        tta = self.tta_orders - 1  # --tta K: the mean over the content-seeded order and K-1 others
        result.fake_probability = reported_probability(
            math.fsum([score, *others[:tta]]) / (tta + 1) if tta > 0 else score)
        if self.stability_orders > 0:
            result.record_spread([score, *others[:self.stability_orders]])

    def _score(self, batch: list[_Prepared], keep_selection: bool, mosaics: torch.Tensor | None,
               scored: dict[str, ScoreFacts]) -> Iterator[ScanRecord]:
        """Scores the batch; a copy of a content already scored (in an earlier scan or batch, or
        earlier in this one) takes that score instead of a forward pass of its own."""
        selected = [item for item in batch if item.selection is not None]
        firsts, copies, here = [], [], set()
        for index, item in enumerate(selected):
            sha256 = item.result.sha256
            if sha256 and (sha256 in scored or sha256 in here):
                copies.append(item)
            else:
                firsts.append(index)
                here.add(sha256)
        ready = [selected[index] for index in firsts]
        notes_before = {id(item): len(item.result.notes) for item in ready}
        if mosaics is not None and len(firsts) != len(selected):
            mosaics = mosaics[torch.tensor(firsts, dtype=torch.long, device=mosaics.device)]
        if ready:
            scores: Sequence[float | None]
            try:
                scores = self.runner.score(mosaics if mosaics is not None else
                                           [item.selected.mosaic for item in ready])
            except Exception as exc:  # noqa: BLE001 - a model failure marks the batch, not the scan
                scores = [None] * len(ready)
                for item in ready:
                    item.result.status = Status.ERROR
                    item.result.error = f"model failed: {type(exc).__name__}: {exc}"
            sizes = self.runner.last_forward_sizes
            order_scores = self._order_scores([item for item, score in zip(ready, scores) if score is not None])
            for index, (item, score) in enumerate(zip(ready, scores)):
                if score is None:
                    continue
                others = order_scores.get(id(item), [])
                if not all(math.isfinite(p) for p in (score, *others)):
                    item.result.status, item.result.error = Status.ERROR, NON_FINITE_SCORE
                    continue
                self._take_scores(item.result, float(score), others)
                if index < len(sizes) and sizes[index] != self.runner.batch_size:
                    item.result.notes.append(f"scored in forward passes of {sizes[index]} after running out of "
                                             f"memory (asked for {self.runner.batch_size}): last digits may differ")
        for item in ready:
            if item.result.sha256:
                scored[item.result.sha256] = score_facts(item.result, notes_before[id(item)])
                if item.result.ok:
                    self.known[item.result.sha256] = scored[item.result.sha256]
        for item in copies:
            take_score(item.result, scored[item.result.sha256])
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

    def update(self, result: ScanRecord) -> None:
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


ProgressCallback = Callable[[ScanProgress, ScanRecord], None]
