"""Training/test folder trees: any tree whose leaves are `0_real/` and `1_fake/` (or GenImage's
`nature/` and `ai/`).

Each image has a *subset*, the top-level folder of the root it lies in (a generator in a test
set, as the authors' test.py reads it: `test/stylegan/car/1_fake/x.png` is subset
`stylegan`), and a *category*, the whole path between the root and its class folder
(`stylegan/car`). Class folders directly in the root make one subset named after the root
(category `.`). Preprocessing is the detector's patch selection
(`dgs_desktop.detector.patches`), the same code the app runs; training passes an explicit
shuffle seed per sample and view and flips the finished mosaic.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgs_desktop.scan.decode import ANALYST, DEFAULT_MAX_PIXELS, DecodeError, decode_image, read_file
from dgs_desktop.scan.discover import IMAGE_SUFFIXES

from .errors import TrainError

CLASS_DIRS = {"0_real": 0, "1_fake": 1, "nature": 0, "ai": 1}  # ours/authors', GenImage's native names
ROOT_CATEGORY = "."


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 real, 1 fake
    subset: str  # top-level folder under the root (the root's own name for class folders in it)
    category: str  # posix path from the root to the class folder's parent ("." for the root)
    rel: str  # posix path relative to the root

    @property
    def name(self) -> str:
        return str(self.path)

    def read_bytes(self) -> bytes:
        return read_file(self.path)

    def decode(self, max_pixels: int = DEFAULT_MAX_PIXELS, decoding: str = ANALYST):
        return decode_image(self.path, max_pixels=max_pixels, decoding=decoding)


@dataclass
class Dataset:
    """Samples of this module or of `trainer.sources` (any object with label, subset, rel, name, decode())."""

    root: Path
    samples: list[Sample]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    source: dict = field(default_factory=dict)  # what the data is (trainer.sources provenance)

    def counts(self, by: str = "subset") -> dict[str, dict[str, int]]:
        """Real and fake images per subset (or per category with `by="category"`)."""
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            entry = out.setdefault(getattr(s, by), {"real": 0, "fake": 0})
            entry["fake" if s.label else "real"] += 1
        return dict(sorted(out.items()))

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")


def discover(root: str | os.PathLike, require_both: bool = True) -> Dataset:
    """All images under the class folders of `root`, sorted, with their subsets and categories.

    Raises TrainError (one plain sentence) for a missing root, a tree without class folders,
    or a class folder without images (`require_both`: every category must have both classes).
    """
    root = Path(os.path.expanduser(os.fspath(root)))
    if not root.exists():
        raise TrainError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise TrainError(f"data path {root} is not a folder")
    samples: list[Sample] = []
    leaves: dict[str, set[int]] = {}  # category -> labels of its class folders
    empty: list[str] = []
    for dirpath, dirnames, _filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        here = Path(dirpath)
        name = here.name
        if name not in CLASS_DIRS or here == root:
            continue
        dirnames[:] = []  # a class folder is a leaf; images may sit in sub-folders of it
        rel_dir = here.relative_to(root)
        category = rel_dir.parent.as_posix()
        subset = rel_dir.parts[0] if len(rel_dir.parts) > 1 else root.resolve().name
        files = []
        for sub, _, names in os.walk(here, followlinks=True):
            files += [Path(sub) / n for n in names if _is_image_name(n)]
        files.sort()
        leaves.setdefault(category, set()).add(CLASS_DIRS[name])
        if not files:
            empty.append(rel_dir.as_posix())
        for path in files:
            samples.append(Sample(path=path, label=CLASS_DIRS[name], subset=subset, category=category,
                                  rel=path.relative_to(root).as_posix()))
    if not leaves:
        raise TrainError(f"no 0_real/ or 1_fake/ (or nature/, ai/) folders under {root}; expected a tree like "
                         f"{root}/SUBSET/0_real/*.png and {root}/SUBSET/1_fake/*.png")
    if empty:
        raise TrainError(f"{len(empty)} class folder(s) under {root} hold no images: "
                         + ", ".join(empty[:5]) + (" …" if len(empty) > 5 else ""))
    if require_both:
        missing = [f"{category} (no {'fake' if 0 in have else 'real'} folder)"
                   for category, have in sorted(leaves.items()) if len(have) < 2]
        if missing:
            raise TrainError(f"folder(s) under {root} lack a class folder: " + ", ".join(missing[:5]))
    samples.sort(key=lambda s: s.rel)
    return Dataset(root=root, samples=samples)


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
