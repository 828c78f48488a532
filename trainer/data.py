"""The trainer's view of a source's samples (a `trainer.sources.SampleSet`): unreadable images
left out, and the training views. Preprocessing is the detector's patch selection
(`dgs_desktop.detector.patches`), the same code the app runs; training passes an explicit
shuffle seed per sample and view and flips the finished mosaic.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from dgs_desktop.scan.decode import DecodeError, decode_image

from .errors import TrainError
from .sources import Sample, SampleSet, check_usable, discover  # noqa: F401 - discover: as before


def drop_unreadable(data: SampleSet, failures: dict[int, str]) -> SampleSet:
    """A copy without the samples whose index is in `failures`, listing them as skipped."""
    keep = [s for i, s in enumerate(data.samples) if i not in failures]
    bad = [(data.samples[i].name, reason) for i, reason in sorted(failures.items())]
    result = replace(data, samples=keep, skipped=data.skipped + bad)
    check_usable(result, require_both=True)
    return result


def format_unreadable(unreadable: list[tuple[str, str]], limit: int = 20) -> str:
    lines = [f"  {path}: {reason}" for path, reason in unreadable[:limit]]
    if len(unreadable) > limit:
        lines.append(f"  … and {len(unreadable) - limit} more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- views
def view_params(seed: int, index: int, view: int) -> tuple[bool, int]:
    """(horizontal flip, shuffle seed) of augmented view `view` of sample `index`.

    Deterministic in (seed, index, view): stage 1 and the first stage-2 epoch use view 0, so
    their inputs are identical and the stage-1 teacher features can be reused in stage 2.
    """
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), int(view), 0x5D65]).generate_state(2)
    return bool(state[0] & 1), int(state[1])


def load_rgb(path) -> np.ndarray:
    """Decodes an image (a path, or a sample with decode()) with the app's decoder; raises
    DecodeError with a plain reason."""
    return np.asarray((path.decode() if hasattr(path, "decode") else decode_image(path)).image)


def training_mosaic(path: Path, seed: int, index: int, view: int) -> np.ndarray:
    """The (224, 224, 3) uint8 patch-selected mosaic of one training view.

    The flip mirrors the finished mosaic, as the authors' RandomHorizontalFlip after
    PatchSelectionTransform does; flipping the image first would select other patches
    whenever the width is not a multiple of 32 (the trimmed columns change sides).
    """
    from dgs_desktop.detector.patches import select_patches

    flip, shuffle_seed = view_params(seed, index, view)
    mosaic = select_patches(load_rgb(path), seed=shuffle_seed).mosaic
    return np.ascontiguousarray(mosaic[:, ::-1]) if flip else mosaic


class MosaicDataset:
    """torch-style map dataset over (sample index, view) pairs -> (mosaic uint8, label, index)."""

    def __init__(self, samples: list[Sample], seed: int):
        self.samples = samples
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        index, view = key
        sample = self.samples[index]
        try:
            mosaic = training_mosaic(sample, self.seed, index, view)
        except DecodeError as exc:
            raise TrainError(f"cannot read {sample.name} any more: {exc}") from None
        return mosaic, sample.label, index


def collate_mosaics(items):
    import torch

    from dgs_desktop.detector.patches import mosaics_to_tensor

    mosaics, labels, indices = zip(*items)
    return (mosaics_to_tensor(np.stack(mosaics)), torch.tensor(labels, dtype=torch.float32),
            torch.tensor(indices, dtype=torch.long))
