"""The trainer's view of a source's samples (`trainer.sources`): the `Dataset`, unreadable images,
and the training views. Preprocessing is the detector's patch selection
(`dgs_desktop.detector.patches`), the same code the app runs; training passes an explicit
shuffle seed per sample and view and flips the finished mosaic.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgs_desktop.scan.decode import DecodeError, decode_image

from .errors import TrainError
from .sources import DataOptions, Sample, count_labels, discover, open_source  # noqa: F401 - discover: as before


@dataclass
class Dataset:
    """The samples of a source (`trainer.sources`) as the trainer and evaluation use them."""

    root: Path
    samples: list[Sample]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    source: dict = field(default_factory=dict)  # what the data is (trainer.sources provenance)

    def counts(self, by: str = "subset") -> dict[str, dict[str, int]]:
        """Real and fake images per subset (or per category with `by="category"`)."""
        return count_labels(self.samples, by)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


def load_dataset(spec: str | os.PathLike, options: DataOptions = DataOptions(), *, require_both: bool = True,
                 cache_dir: str | os.PathLike | None = None):
    """`open_source` as the trainer's `Dataset` (rows without label/image listed as unreadable)."""
    result = open_source(spec, options, require_both=require_both, cache_dir=cache_dir)
    return Dataset(root=result.root, samples=result.samples, unreadable=list(result.skipped),
                   source=result.provenance)


def drop_unreadable(dataset: Dataset, failures: dict[int, str]) -> Dataset:
    """A copy without the samples whose index is in `failures`, recording them as unreadable."""
    keep = [s for i, s in enumerate(dataset.samples) if i not in failures]
    bad = [(dataset.samples[i].name, reason) for i, reason in sorted(failures.items())]
    result = Dataset(root=dataset.root, samples=keep, unreadable=dataset.unreadable + bad, source=dataset.source)
    labels = Counter(s.label for s in keep)
    if not keep:
        raise TrainError(f"none of the images under {dataset.root} could be read")
    if len(labels) < 2:
        have = "real" if 0 in labels else "fake"
        raise TrainError(f"only {have} images under {dataset.root} are readable; training needs both classes")
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
