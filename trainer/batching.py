"""Which images go into which step: seeded global batches, their per-process micro-batches,
and the DataLoader that turns (sample, view) keys into mosaics."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from .data import MosaicDataset, collate_mosaics
from .sources import SampleSet

STAGE_PROBE, STAGE_DGS = 1, 2


def global_batches(n: int, batch_size: int, divisor: int, seed: int, stage: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches: a seeded permutation cut into `batch_size` pieces; a last
    partial batch is trimmed to a multiple of `divisor` (ranks x micro-batches) so every
    micro-batch of a step has the same size and the averaged gradient is the batch mean."""
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, stage, epoch, 0xB47C]).permutation(n)
    batches = []
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        chunk = chunk[: len(chunk) - len(chunk) % divisor]
        if len(chunk):
            batches.append(chunk)
    return batches


def micro_batches(batch: np.ndarray, rank: int, world: int, accum: int) -> list[np.ndarray]:
    """This process's `accum` equal pieces of a global batch (rank-major order)."""
    mine = batch.reshape(world * accum, -1)  # equal pieces (global_batches guarantees it)
    return [mine[rank * accum + m] for m in range(accum)]


def mosaic_loader(dataset: SampleSet, keys: list[list[tuple[int, int]]], *, seed: int, workers: int,
                  pin_memory: bool) -> torch.utils.data.DataLoader:
    """Batches of (inputs, labels, indices); `keys[b]` lists the (sample index, view) of batch b."""
    workers = max(0, workers)
    # map-style (__getitem__ and __len__): the loader needs no torch subclass, and trainer.data imports no torch
    mosaics = cast("torch.utils.data.Dataset[tuple[np.ndarray, int, int]]", MosaicDataset(dataset.samples, seed))
    return torch.utils.data.DataLoader(
        mosaics, batch_sampler=keys, num_workers=workers,
        collate_fn=collate_mosaics, pin_memory=pin_memory, persistent_workers=False,
        prefetch_factor=4 if workers else None, generator=torch.Generator().manual_seed(seed))


def view_keys(batches: list[np.ndarray], view: int) -> list[list[tuple[int, int]]]:
    """Loader keys: every sample of every batch at the same augmented view."""
    return [[(int(i), view) for i in batch] for batch in batches]
