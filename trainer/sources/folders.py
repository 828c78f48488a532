"""Folder trees whose leaves are `0_real/` and `1_fake/` (GenImage's `nature/` and `ai/` too).

Each image has a *subset*, the top-level folder of the root it lies in (a generator in a test
set, as the authors' test.py reads it: `test/stylegan/car/1_fake/x.png` is subset
`stylegan`), and a *category*, the whole path between the root and its class folder
(`stylegan/car`). Class folders directly in the root make one subset named after the root
(category `.`). `--classes car,cat,...` (the authors' option) selects categories by that path
or its last folder name.
"""

from __future__ import annotations

import os
from pathlib import Path

from dgs_desktop.scan.discover import IMAGE_SUFFIXES

from ..errors import TrainError
from .sample import DataOptions, Sample, SampleSet

CLASS_DIRS = {"0_real": 0, "1_fake": 1, "nature": 0, "ai": 1}  # ours/authors', GenImage's native names
ROOT_CATEGORY = "."


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")


def has_class_leaves(root: Path) -> bool:
    """Whether any folder under `root` is a class folder (else it may be a parquet dataset)."""
    for _dirpath, dirnames, _ in os.walk(root, followlinks=True):
        if any(d in CLASS_DIRS for d in dirnames):
            return True
    return False


def discover(root: str | os.PathLike, require_both: bool = True) -> SampleSet:
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
    return SampleSet(root=root, description=str(root), samples=samples)


def _category_matches(category: str, classes: tuple[str, ...]) -> bool:
    """A category (the path from the root to the folder holding the class folders) is selected by
    its full path or by its last folder name (`car` selects `car` and `progan/car`)."""
    return category in classes or category.rsplit("/", 1)[-1] in classes


def read_tree(root: Path, classes: tuple[str, ...] = (), require_both: bool = True) -> SampleSet:
    """Every image under a class leaf of `root` (`discover`), optionally only `classes`."""
    tree = discover(root, require_both=require_both)
    if classes:
        categories = {s.category for s in tree.samples}
        unknown = [c for c in classes if not any(_category_matches(k, (c,)) for k in categories)]
        if unknown:
            raise TrainError(f"--classes {','.join(unknown)}: no such category folder under {root} "
                             f"(there are: {', '.join(sorted(categories))})")
        tree.samples = [s for s in tree.samples if _category_matches(s.category, classes)]
    return tree


def open_tree(root: Path, options: DataOptions, require_both: bool) -> SampleSet:
    """A folder tree as a source (a tree has no splits)."""
    if options.split:
        raise TrainError("--split applies to datasets (parquet or hf-dataset:), not to a folder tree")
    result = read_tree(root, options.classes, require_both)
    result.provenance.update(kind="folder", path=str(root.resolve()))
    return result
